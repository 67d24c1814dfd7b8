"""Never destroy or take over what is not ours (issue 10 items 1-3), through the CLI as an operator runs it.

Sites own2..own6 on 10.121.0.0/24 .. 10.124.0.0/24, one host each (build and teardown take seconds).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from conftest import load_test_site, write_site

pytestmark = pytest.mark.lab


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m hive_nornir ARGS` in cwd, as an operator types it."""
    return subprocess.run([sys.executable, "-m", "hive_nornir", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def docker_id(name: str) -> str | None:
    """The id of a container or network (None: absent)."""
    r = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", name], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def state(root: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((root / ".hive" / "private" / "state.json").read_text())  # type: ignore[no-any-return]


def ssh_run(root: Path, cmd: str) -> str:
    """A command on the stage's host with the checkout's own key and known_hosts (RejectPolicy)."""
    ctx = root / ".hive" / "private"
    (entry,) = state(root)["hosts"].values()
    c = paramiko.SSHClient()
    c.load_host_keys(str(ctx / "known_hosts"))
    c.set_missing_host_key_policy(paramiko.RejectPolicy())
    c.connect("127.0.0.1", port=int(entry["port"]), username=entry["user"], key_filename=str(ctx / "id_ed25519"),
              allow_agent=False, look_for_keys=False, timeout=10, banner_timeout=10, auth_timeout=10)
    try:
        _, out, _ = c.exec_command(cmd, timeout=30)
        return str(out.read().decode().strip())
    finally:
        c.close()


def one_host_site(root: Path, name: str, cidr: str) -> Path:
    write_site(root, name, cidr, 1, separate=False)
    return root


def cleanup(root: Path) -> None:
    """Destroy whatever this checkout owns (adopt: a failed test may have left foreign-labelled leftovers of
    this module's own site names)."""
    if (root / "inventory").is_dir():
        cli(root, "run", "build-infra", "-D", "--adopt")


@pytest.fixture
def checkouts(tmp_path: Path) -> Iterator[list[Path]]:
    """Directories this test makes checkouts in; each is destroyed (with --adopt) afterwards."""
    made: list[Path] = []
    yield made
    for root in reversed(made):
        cleanup(root)


def test_second_checkout_refuses_build_and_destroy_and_the_first_survives(tmp_path: Path,
                                                                          checkouts: list[Path]) -> None:
    a = one_host_site(tmp_path / "a", "own2", "10.121.0.0/24")
    b = one_host_site(tmp_path / "b", "own2", "10.121.0.0/24")
    checkouts.extend([a, b])
    first = cli(a, "run", "build-infra")
    assert first.returncode == 0, first.stderr
    cname, net = "hive-own2-private-p-hive0", "hive-own2-private"
    cid, nid = docker_id(cname), docker_id(net)
    assert cid and nid
    ssh_run(a, "sudo -n touch /root/configured-by-a")

    owner = str((a / ".hive" / "private").resolve())
    for args in (("run", "build-infra"), ("run", "build-infra", "-D"), ("run", "build-infra", "--json", "-"),
                 ("run", "build-infra", "-C"), ("run", "build-infra", "-D", "-C")):
        refused = cli(b, *args)
        assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
        assert f"container {cname} belongs to {owner}" in refused.stderr, refused.stderr
        assert "--adopt" in refused.stderr and "Traceback" not in refused.stderr
        assert (docker_id(cname), docker_id(net)) == (cid, nid), args
        assert ssh_run(a, "sudo -n ls /root/configured-by-a") == "/root/configured-by-a"
    doc = json.loads(cli(b, "run", "build-infra", "-D", "--json", "-").stdout)
    assert doc["exit_code"] == 2 and owner in doc["error"]
    assert not (b / ".hive" / "private" / "known_hosts").exists()  # b changed nothing of its own either

    # a copy of the first checkout, .hive/ included, inherits the id but not the containers
    c = tmp_path / "copy"
    shutil.copytree(a, c)
    checkouts.append(c)
    copied = cli(c, "run", "build-infra")
    assert copied.returncode == 2 and "records this stage's id too" in copied.stderr, copied.stderr
    shutil.rmtree(c / ".hive")  # its cleanup must not destroy a's lab
    assert docker_id(cname) == cid

    again = cli(a, "run", "build-infra", "--json", "-")
    assert again.returncode == 0 and json.loads(again.stdout)["changed"] == 0, again.stderr
    assert docker_id(cname) == cid
    labels = json.loads(subprocess.run(["docker", "inspect", "-f", "{{json .Config.Labels}}", cname],
                                       capture_output=True, text=True, check=True).stdout)
    assert (labels["hive_nornir.stage_id"], labels["hive_nornir.owner"]) == (state(a)["stage_id"], owner)


def test_adopt_takes_over_without_recreating(tmp_path: Path, checkouts: list[Path]) -> None:
    a = one_host_site(tmp_path / "a", "own2", "10.121.0.0/24")
    b = one_host_site(tmp_path / "b", "own2", "10.121.0.0/24")
    checkouts.extend([a, b])
    assert cli(a, "run", "build-infra").returncode == 0
    cname = "hive-own2-private-p-hive0"
    cid, nid = docker_id(cname), docker_id("hive-own2-private")
    ssh_run(a, "sudo -n touch /root/configured-by-a")
    adopted = cli(b, "run", "build-infra", "--adopt")
    assert adopted.returncode == 0, adopted.stderr
    assert f"adopting container {cname}" in adopted.stdout
    assert docker_id(cname) == cid
    assert set(state(b)["adopted"]) == {cid, nid}
    assert ssh_run(b, "sudo -n ls /root/configured-by-a") == "/root/configured-by-a"  # the same host, b's key
    rerun = cli(b, "run", "build-infra", "--json", "-")
    assert rerun.returncode == 0 and json.loads(rerun.stdout)["changed"] == 0, rerun.stderr
    gone = cli(b, "run", "build-infra", "-D")
    assert gone.returncode == 0, gone.stderr
    assert docker_id(cname) is None and docker_id("hive-own2-private") is None


def test_containers_of_an_older_version_are_not_ours_unless_adopted(tmp_path: Path, checkouts: list[Path],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Made before stage ids existed: site/stage labels only, and a state.json without stage_id."""
    from hive_nornir.providers import docker as provider

    root = one_host_site(tmp_path / "old", "own3", "10.122.0.0/24")
    checkouts.append(root)
    site = load_test_site(root / "inventory" / "hive.yml")
    with monkeypatch.context() as m:
        m.setattr(provider, "owner_labels", lambda *_: {})  # as an older hive_nornir labelled them
        m.setattr(provider, "refuse_foreign", lambda *_: [])  # ... which checked no owner either
        provider.build(site, "private", root / ".hive" / "private")
    old = state(root)
    del old["stage_id"]
    (root / ".hive" / "private" / "state.json").write_text(json.dumps(old))
    cname = "hive-own3-private-p-hive0"
    cid = docker_id(cname)
    for args in (("run", "build-infra"), ("run", "build-infra", "-D")):
        refused = cli(root, *args)
        assert refused.returncode == 2, refused.stderr
        assert f"container {cname} has no hive_nornir.stage_id label: an older hive_nornir made it" \
            in refused.stderr
        assert docker_id(cname) == cid
    adopted = cli(root, "run", "build-infra", "--adopt")
    assert adopted.returncode == 0, adopted.stderr
    assert docker_id(cname) == cid and cid in state(root)["adopted"]
    assert cli(root, "run", "build-infra", "-D").returncode == 0
    assert docker_id(cname) is None


def host_fingerprint(cname: str) -> str:
    """The container's ed25519 host key fingerprint, read inside it (not over TCP)."""
    return subprocess.run(["docker", "exec", cname, "ssh-keygen", "-lf", "/etc/ssh/ssh_host_ed25519_key.pub"],
                          capture_output=True, text=True, check=True).stdout.split()[1]


def test_a_changed_host_key_is_refused_until_rekeyed(tmp_path: Path, checkouts: list[Path]) -> None:
    root = one_host_site(tmp_path / "k", "own5", "10.123.0.0/24")
    checkouts.append(root)
    assert cli(root, "run", "build-infra").returncode == 0
    cname = "hive-own5-private-p-hive0"
    kh = root / ".hive" / "private" / "known_hosts"
    recorded = kh.read_text()
    old_fp = host_fingerprint(cname)
    subprocess.run(["docker", "exec", cname, "sh", "-c",
                    "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh"],
                   check=True, capture_output=True, timeout=60)
    new_fp = host_fingerprint(cname)
    assert new_fp != old_fp
    port = state(root)["hosts"]["p-hive0.own5"]["port"]

    refused = cli(root, "run", "build-infra")
    assert refused.returncode == 3, refused.stderr
    assert "error: (provider): failed at step build-infra: p-hive0.own5: host key changed" in refused.stderr
    for part in ("p-hive0.own5", f"[127.0.0.1]:{port}", str(kh.resolve()), old_fp, new_fp, "--rekey p-hive0"):
        assert part in refused.stdout, (part, refused.stdout)  # the whole message in the progress lines
    assert kh.read_text() == recorded
    setup = cli(root, "run", "setup-hosts", "-T", "ssh-connection")
    assert setup.returncode == 4 and "HOST KEY CHANGED" in setup.stderr, setup.stderr
    assert kh.read_text() == recorded

    assert cli(root, "run", "build-infra", "--rekey", "p-hive1").returncode == 2  # not a host of the stage
    rekeyed = cli(root, "run", "build-infra", "--rekey", "p-hive0")
    assert rekeyed.returncode == 0, rekeyed.stderr
    assert "rekeyed" in rekeyed.stdout and new_fp in rekeyed.stdout
    assert kh.read_text() != recorded
    assert cli(root, "run", "setup-hosts", "-T", "ssh-connection").returncode == 0
    rerun = cli(root, "run", "build-infra", "--json", "-")
    assert rerun.returncode == 0 and json.loads(rerun.stdout)["changed"] == 0, rerun.stderr


def test_the_notebook_run_where_it_lives_keeps_the_projects_lab(tmp_path: Path, checkouts: list[Path]) -> None:
    """runbooks/example.ipynb's Hive and build-infra cells, executed in <project>/runbooks like Jupyter does."""
    root = one_host_site(tmp_path / "proj", "own6", "10.124.0.0/24")
    checkouts.append(root)
    assert cli(root, "run", "build-infra").returncode == 0
    cname = "hive-own6-private-p-hive0"
    cid = docker_id(cname)
    ssh_run(root, "sudo -n touch /root/configured")
    notebook = Path(__file__).resolve().parents[2] / "hive_nornir" / "runbooks" / "example.ipynb"
    (root / "runbooks").mkdir()
    shutil.copy(notebook, root / "runbooks" / "example.ipynb")
    cells = ["".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    upto = next(i for i, c in enumerate(cells) if "build_infra(hive)" in c)
    script = "\n".join(cells[:upto + 1]).replace("build_infra(hive)", "print(build_infra(hive).text())")
    run = subprocess.run([sys.executable, "-c", script], cwd=root / "runbooks", capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    assert "p-hive0.own6" in run.stdout and "0 change(s)" in run.stdout, run.stdout
    assert "embedded lab site" not in run.stderr
    assert not (root / "runbooks" / ".hive").exists()
    assert docker_id(cname) == cid
    assert ssh_run(root, "sudo -n ls /root/configured") == "/root/configured"
