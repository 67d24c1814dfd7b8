"""Prepared hosts: a changed host key is refused on both probe paths (direct, ssh_config) until --rekey names the
host; a real local sshd plays the host."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_sshd import LocalSSHD, running_sshd

from hive_nornir.providers import ProviderError, get_provider
from hive_nornir.site import load_site

OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMyr+Ic9uiMpljcGXJKQzIkC28z8NOP2WlrampWPKgu7"


@pytest.fixture(scope="module")
def sshd() -> Iterator[LocalSSHD]:
    """A root-only throwaway sshd on 127.0.0.1 (no test users or sudoers: other suites create those)."""
    with running_sshd("hive-rekey-") as server:
        yield server


def prepared_stage(root: Path, sshd: LocalSSHD, via_ssh_config: bool) -> tuple[object, Path]:
    """A one-host prepared stage that logs in as root to the test sshd with its client key as the stage key."""
    inv = root / "inventory"
    (inv / "host_vars").mkdir(parents=True)
    (inv / "hive.yml").write_text("plugin: hive_inventory\nname: own8\nstages:\n  staging:\n    provider: prepared\n"
                                  "    separate_repository: False\n    number_of_hosts: 1\n"
                                  "    cidr: 10.124.0.0/24\n")
    (inv / "host_vars" / "s-hive0.own8.yml").write_text(
        f"hive_ssh_host: 127.0.0.1\nhive_sshd_port: {sshd.port}\nhive_admin: root\n")
    ctx = root / ".hive" / "staging"
    ctx.mkdir(parents=True)
    shutil.copy(sshd.key, ctx / "id_ed25519")
    shutil.copy(f"{sshd.key}.pub", ctx / "id_ed25519.pub")
    if via_ssh_config:
        (ctx / "ssh_config").write_text(f"Host s-hive0.own8\n  HostName 127.0.0.1\n  Port {sshd.port}\n")
    return load_site(inv / "hive.yml"), ctx


def real_key(sshd: LocalSSHD) -> str:
    return " ".join(sshd.host_pub.read_text().split()[:2])


@pytest.mark.parametrize("via_ssh_config", [False, True], ids=["direct", "ssh_config"])
def test_changed_key_refused_until_rekeyed(tmp_path: Path, sshd: LocalSSHD, via_ssh_config: bool) -> None:
    site, ctx = prepared_stage(tmp_path, sshd, via_ssh_config)
    prepared = get_provider("prepared")
    kh = ctx / "known_hosts"
    first = prepared.build(site, "staging", ctx)
    assert first["hosts"]["s-hive0.own8"] == ["host_key_recorded"]
    assert kh.read_text().split()[1:3] == real_key(sshd).split()
    entry = kh.read_text().split()[0]
    kh.write_text(f"{entry} {OTHER_KEY}\n")  # the host now shows a key other than the recorded one
    with pytest.raises(ProviderError, match="--rekey s-hive0") as info:
        prepared.build(site, "staging", ctx)
    assert "s-hive0.own8" in str(info.value)
    assert kh.read_text() == f"{entry} {OTHER_KEY}\n"  # refused: the recorded key stays
    with pytest.raises(ProviderError, match="not a host of this stage"):
        prepared.build(site, "staging", ctx, rekey=["s-hive9"])
    again = prepared.build(site, "staging", ctx, rekey=["s-hive0"])
    assert again["hosts"]["s-hive0.own8"] == ["rekeyed"]
    assert [ln.split()[1:3] for ln in kh.read_text().splitlines()] == [real_key(sshd).split()]
    assert prepared.build(site, "staging", ctx)["hosts"]["s-hive0.own8"] == []
