"""Ownership of lab resources by stage id (not by name) and host keys that are never silently replaced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hive_nornir.providers.common import NotOurs, judge_host_key, key_fingerprint
from hive_nornir.providers.ownership import (
    LABEL_OWNER,
    LABEL_STAGE_ID,
    Resource,
    new_stage_id,
    owner_labels,
    refuse_foreign,
)

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMyr+Ic9uiMpljcGXJKQzIkC28z8NOP2WlrampWPKgu7"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHtJqG0G1nb2M0x5w8m9p6Yw3Yv4d0mC4Q1oN0kS0aBc"


def ctx(root: Path, stage_id: str | None) -> Path:
    """A stage context dir whose state.json records stage_id."""
    d = root / ".hive" / "private"
    d.mkdir(parents=True)
    (d / "state.json").write_text(json.dumps({"stage_id": stage_id, "hosts": {}} if stage_id else {"hosts": {}}))
    return d


def container(labels: dict[str, str], docker_id: str = "c1") -> Resource:
    return Resource("container", "hive-own1-private-p-hive0", docker_id, labels)


def test_ids_differ_between_checkouts() -> None:
    assert len({new_stage_id() for _ in range(50)}) == 50


def test_own_resources_pass(tmp_path: Path) -> None:
    here = ctx(tmp_path / "a", "id-a")
    assert refuse_foreign([container(owner_labels("id-a", here))], "id-a", set(), here, "build", False) == []


def test_another_checkouts_resources_are_refused_naming_its_path(tmp_path: Path) -> None:
    a, b = ctx(tmp_path / "a", "id-a"), ctx(tmp_path / "b", "id-b")
    with pytest.raises(NotOurs) as info:
        refuse_foreign([container(owner_labels("id-a", a))], "id-b", set(), b, "destroy own1/private", False)
    msg = str(info.value)
    assert f"container hive-own1-private-p-hive0 belongs to {a.resolve()}" in msg
    assert str(b.resolve()) in msg and "--adopt" in msg and msg.startswith("refusing to destroy own1/private")


def test_legacy_resources_without_an_id_are_not_assumed_ours(tmp_path: Path) -> None:
    here = ctx(tmp_path / "a", "id-a")
    with pytest.raises(NotOurs, match=r"no hive_nornir\.stage_id label: an older hive_nornir made it"):
        refuse_foreign([container({"hive_nornir.site": "own1"})], "id-a", set(), here, "build", False)


def test_adopt_takes_them_over_and_adopted_ids_stay_ours(tmp_path: Path) -> None:
    a, b = ctx(tmp_path / "a", "id-a"), ctx(tmp_path / "b", "id-b")
    res = container(owner_labels("id-a", a), "dock1")
    assert refuse_foreign([res], "id-b", set(), b, "build", True) == [res]
    assert refuse_foreign([res], "id-b", {"dock1"}, b, "build", False) == []


def test_a_copied_state_dir_does_not_inherit_the_resources(tmp_path: Path) -> None:
    """cp -r of a checkout copies .hive/ and its id: the original still claims the containers, the copy may not."""
    a, copy = ctx(tmp_path / "a", "id-a"), ctx(tmp_path / "copy", "id-a")
    res = container(owner_labels("id-a", a))
    with pytest.raises(NotOurs, match="records this stage's id too"):
        refuse_foreign([res], "id-a", set(), copy, "build", False)
    assert refuse_foreign([res], "id-a", set(), a, "build", False) == []


def test_a_moved_checkout_keeps_its_resources(tmp_path: Path) -> None:
    """mv of a checkout: the owner label names a path that is gone, the id travelled along."""
    moved = ctx(tmp_path / "new", "id-a")
    labels = {LABEL_STAGE_ID: "id-a", LABEL_OWNER: str(tmp_path / "old" / ".hive" / "private")}
    assert refuse_foreign([container(labels)], "id-a", set(), moved, "build", False) == []


def test_a_changed_host_key_is_refused_unless_named(tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    key, action, refusal = judge_host_key("p-hive0.own1", "[127.0.0.1]:32772", KEY_A, KEY_B, kh)
    assert key == KEY_A and action is None and refusal is not None
    for part in ("p-hive0.own1", "[127.0.0.1]:32772", str(kh), key_fingerprint(KEY_A), key_fingerprint(KEY_B),
                 "--rekey p-hive0"):
        assert part in refusal
    assert judge_host_key("p-hive0.own1", "[127.0.0.1]:32772", KEY_A, KEY_B, kh, {"p-hive0.own1"}) == (
        KEY_B, "rekeyed", None)
    assert judge_host_key("p-hive0.own1", "p", None, KEY_B, kh) == (KEY_B, "host_key_recorded", None)
    assert judge_host_key("p-hive0.own1", "p", KEY_B, KEY_B, kh) == (KEY_B, None, None)


def test_fingerprint_is_what_ssh_keygen_prints(tmp_path: Path) -> None:
    import shutil
    import subprocess

    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    (tmp_path / "k.pub").write_text(KEY_A + "\n")
    printed = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True,
                             check=True).stdout.split()[1]
    assert key_fingerprint(KEY_A) == f"ssh-ed25519 {printed}"


class RefusingProvider:
    """A provider whose resources belong to someone else: what the CLI makes of NotOurs."""

    calls: list[tuple[str, bool]] = []

    def build(self, site: object, stage: str, context_dir: Path, log: object = None, *, adopt: bool = False,
              rekey: object = ()) -> dict[str, object]:
        self.calls.append(("build", adopt))
        raise NotOurs("refusing to build-infra own7/private: container X belongs to /elsewhere/.hive/private")

    def destroy(self, site: object, stage: str, context_dir: Path, log: object = None, *,
                adopt: bool = False) -> None:
        self.calls.append(("destroy", adopt))
        raise NotOurs("refusing to destroy own7/private: container X belongs to /elsewhere/.hive/private")


@pytest.mark.parametrize("extra", [[], ["-D"]])
def test_cli_refusal_is_exit_2_with_the_owner_in_stderr_and_json(tmp_path: Path, extra: list[str],
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from hive_nornir import infra
    from hive_nornir.cli import main

    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hive.yml").write_text(
        "plugin: hive_inventory\nname: own7\nstages:\n  private: {provider: docker, cidr: 10.124.0.0/24}\n")
    provider = RefusingProvider()
    monkeypatch.setattr(infra, "get_provider", lambda name: provider)
    out = tmp_path / "report.json"
    assert main(["-r", str(tmp_path), "run", "build-infra", *extra, "--json", str(out)]) == 2
    assert "error: build-infra: refusing to " in capsys.readouterr().err
    assert "/elsewhere/.hive/private" in json.loads(out.read_text())["error"]
    assert main(["-r", str(tmp_path), "run", "build-infra", *extra, "--adopt"]) == 2
    assert provider.calls[-2:] == [("destroy" if extra else "build", False), ("destroy" if extra else "build", True)]


def test_adopt_and_rekey_belong_to_build_infra_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hive_nornir.cli import main

    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hive.yml").write_text(
        "plugin: hive_inventory\nname: own7\nstages:\n  private: {provider: docker, cidr: 10.124.0.0/24}\n")
    assert main(["-r", str(tmp_path), "run", "setup-hosts", "--adopt"]) == 2
    assert main(["-r", str(tmp_path), "run", "setup-hosts", "--rekey", "p-hive0"]) == 2
    assert main(["-r", str(tmp_path), "run", "build-infra", "--rekey", "p-hive9"]) == 2
    assert main(["-r", str(tmp_path), "run", "build-infra", "--rekey", ","]) == 2
    assert main(["-r", str(tmp_path), "run", "setup-hosts", "-D"]) == 2  # -D: hive-builder's three phases only
    err = capsys.readouterr().err
    assert "-D/--destroy only applies to build-infra, deploy-services, build-volumes" in err
    assert "--adopt only applies to build-infra" in err and "--rekey only applies to build-infra" in err
    assert "--rekey p-hive9: not a host of stage private" in err and "--rekey needs at least one host name" in err
