"""The notebook and the cron script, run the way users run them, against the lab."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Lab, own_lab

from hive_nornir.api import Hive
from hive_nornir.engine.context import HostContext
from hive_nornir.engine.lock import StageLock
from hive_nornir.report.run_report import EXIT_LOCKED, EXIT_OK, EXIT_UNREACHABLE

pytestmark = pytest.mark.lab
NOTEBOOK = Path(__file__).resolve().parents[2] / "runbooks" / "example.ipynb"


def test_example_notebook_cells_run_in_order(lab, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(lab.root)
    cells = [c["source"] for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    namespace: dict[str, object] = {}
    last = None
    for source in cells:
        *body, tail = source.rstrip().splitlines()
        exec("\n".join(body), namespace)
        try:
            last = eval(tail, namespace)
        except SyntaxError:
            exec(tail, namespace)
    report = namespace["report"]
    assert report.check and "<table>" in report._repr_html_()  # type: ignore[attr-defined]
    printed = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    # print_result(report) printed every host and step; default_progress() printed lines as hosts finished
    assert all(f"* {h} ** changed : " in printed for h in lab.hosts) and "---- hostsfile ** changed : " in printed
    assert "== hostsfile" in printed and all(re.search(rf"^   {re.escape(h)} +(ok|changed) ", printed, re.M)
                                             for h in lab.hosts)
    assert isinstance(last, dict) and set(last) == set(lab.hosts)  # uptime per host


def test_cron_script_writes_report_and_respects_the_lock(lab) -> None:  # type: ignore[no-untyped-def]
    cmd = [sys.executable, "-m", "hive_nornir.runbooks.cron_setup_hosts", "--root", str(lab.root),
           "--phase", "setup-hosts", "-T", "base,hostsfile"]  # the whole phase is tests/lab/test_setup_hosts_lab.py
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == EXIT_OK, proc.stdout + proc.stderr
    assert (proc.stdout, proc.stderr) == ("", "")  # cron mails only when something is wrong
    report = json.loads((lab.context_dir / "reports" / "setup-hosts-private-latest.json").read_text())
    assert report["exit_code"] == EXIT_OK and {h["host"] for h in report["hosts"]} == set(lab.hosts)
    # sshd carries base's sshd settings, so -T base runs it too (README, the setup-hosts phase)
    assert {s["step"] for s in report["steps"]} == {"base", "hostsfile", "sshd"}
    with StageLock(lab.context_dir):
        locked = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert locked.returncode == EXIT_LOCKED and "locked" in locked.stderr


# -- the CLI as cron and scripts run it (a pipe, not a TTY), and a bastion through ssh_config ---------------------
@pytest.fixture(scope="module")
def hcli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A 2-host stage of its own (site hcli, 10.91.0.0/24): these tests stop sshd and write an ssh_config."""
    with own_lab(tmp_path_factory.mktemp("hcli"), "hcli", "10.91.0.0/24", 2, separate=False) as lab:
        yield lab


def cli(lab: Lab, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m hive_nornir -r ROOT ...` with stdout/stderr on pipes (so never a TTY), colour not disabled."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"TERM": "xterm-256color"}
    return subprocess.run([sys.executable, "-m", "hive_nornir", "-r", str(lab.root), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def test_cli_off_a_tty_prints_no_colour_and_json_dash_is_pure_json(hcli: Lab) -> None:
    proc = cli(hcli, "run", "setup-hosts", "-T", "hostsfile", "--diff")
    assert proc.returncode == EXIT_OK, proc.stdout + proc.stderr
    assert "== hostsfile" in proc.stdout and "changed" in proc.stdout  # progress did print, and has a status word
    assert "\x1b[" not in proc.stdout and "\x1b[" not in proc.stderr
    proc = cli(hcli, "run", "setup-hosts", "-T", "hostsfile", "--json", "-")
    assert proc.returncode == EXIT_OK, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == EXIT_OK and doc["changed"] == 0 and {h["host"] for h in doc["hosts"]} == set(hcli.hosts)
    assert "== hostsfile" in proc.stderr and "\x1b[" not in proc.stderr


def test_stopped_sshd_is_one_readable_line_and_paramiko_speaks_only_with_v(hcli: Lab) -> None:
    victim = hcli.hosts[1]
    hcli.docker_exec(victim, "systemctl stop ssh.socket ssh.service 2>/dev/null; systemctl stop ssh")
    try:
        quiet = cli(hcli, "run", "setup-hosts", "-T", "hostsfile")
        verbose = cli(hcli, "-v", "run", "setup-hosts", "-T", "hostsfile", "-l", victim)
    finally:
        hcli.docker_exec(victim, "systemctl start ssh")
    assert quiet.returncode == EXIT_UNREACHABLE, quiet.stdout + quiet.stderr
    assert "Traceback" not in quiet.stderr and "Traceback" not in quiet.stdout
    lines = quiet.stderr.strip().splitlines()
    port = hcli.ssh_port(victim)
    # docker-proxy accepts and then closes or resets: paramiko's banner error, with or without the socket's errno
    assert len(lines) == 1 and lines[0].startswith(
        f"error: {victim}: unreachable at step hostsfile: 127.0.0.1:{port}: connection closed before "
        "the SSH handshake finished: sshd not listening (Error reading SSH protocol banner"), lines
    # -v brings paramiko's own records (with its traceback) back for debugging
    assert verbose.returncode == EXIT_UNREACHABLE and "Error reading SSH protocol banner" in verbose.stderr
    assert "hive_nornir.transport.paramiko" in verbose.stderr


def test_proxyjump_from_the_stage_ssh_config(hcli: Lab) -> None:
    """B is reached at its private IP through A: the controller dials only A's 127.0.0.1 port."""
    jump, target = hcli.hosts
    jump_port = hcli.ssh_port(jump)
    private_b = hcli.state["hosts"][target]["private_ip"]
    private_a = hcli.state["hosts"][jump]["private_ip"]
    ssh_config = hcli.context_dir / "ssh_config"
    ssh_config.write_text(f"Host {target}\n  HostName {private_b}\n  Port 22\n  ProxyJump 127.0.0.1:{jump_port}\n")
    try:
        seen: dict[str, str] = {}

        def who_calls(ctx: HostContext) -> None:
            seen[ctx.name] = ctx.run("echo $SSH_CONNECTION", sudo=False).stdout.split()[0]

        report = Hive(root=hcli.root).run_task(who_calls, limit=target, name="proxyjump")
        assert report.exit_code == EXIT_OK, report.text()
        assert seen == {target: private_a}  # B saw A's private address as its SSH client: the jump was used
        proc = cli(hcli, "run", "setup-hosts", "-T", "hostsfile", "-l", target, "--json", "-")
        assert proc.returncode == EXIT_OK, proc.stderr
        assert json.loads(proc.stdout)["hosts"][0]["host"] == target
        # first contact with B at its private address went through the jump and recorded its key (accept-new)
        assert any(line.startswith(f"{private_b} ") for line in hcli.known_hosts.read_text().splitlines())
    finally:
        ssh_config.unlink()


def test_prepared_build_infra_probes_through_the_same_jump(hcli: Lab) -> None:
    """A prepared stage over the same two hosts: build-infra reaches both only as the ssh_config says."""
    site = hcli.site_path
    original = site.read_text()
    site.write_text(original + "  staging:\n    provider: prepared\n    separate_repository: False\n"
                    "    cidr: 10.91.0.0/24\n    number_of_hosts: 2\n")
    staging = hcli.root / ".hive" / "staging"
    try:
        names = Hive(root=hcli.root, stage="staging").hosts()
        assert len(names) == 2
        staging.mkdir(parents=True)
        for key in ("id_ed25519", "id_ed25519.pub"):
            (staging / key).write_bytes((hcli.context_dir / key).read_bytes())
        (staging / "id_ed25519").chmod(0o600)
        a_port = hcli.ssh_port(hcli.hosts[0])
        b_ip = hcli.state["hosts"][hcli.hosts[1]]["private_ip"]
        # every staging host has an entry, so nothing falls back to dialling a private address directly
        (staging / "ssh_config").write_text(
            f"Host {names[0]}\n  HostName 127.0.0.1\n  Port {a_port}\n"
            f"Host {names[1]}\n  HostName {b_ip}\n  Port 22\n  ProxyJump 127.0.0.1:{a_port}\n")
        proc = cli(hcli, "-s", "staging", "run", "build-infra", "--json", "-")
        assert proc.returncode == EXIT_OK, proc.stdout + proc.stderr
        assert {h["host"] for h in json.loads(proc.stdout)["hosts"]} == set(names)
        recorded = (staging / "known_hosts").read_text()
        assert f"[127.0.0.1]:{a_port} " in recorded and any(
            line.startswith(f"{b_ip} ") for line in recorded.splitlines())
        seen: dict[str, str] = {}

        def who_calls(ctx: HostContext) -> None:
            seen[ctx.name] = ctx.run("echo $SSH_CONNECTION", sudo=False).stdout.split()[0]

        report = Hive(root=hcli.root, stage="staging").run_task(who_calls, name="proxyjump")
        assert report.exit_code == EXIT_OK, report.text()
        assert seen[names[1]] == hcli.state["hosts"][hcli.hosts[0]]["private_ip"]
    finally:
        site.write_text(original)


def test_resume_follows_the_recorded_selection(hcli: Lab) -> None:
    from hive_nornir.engine.errors import BadInput
    from hive_nornir.engine.runbook import Runbook, Step

    victim = hcli.hosts[1]
    marker = "/var/tmp/hive-resume-hcli"
    hcli.docker_exec(victim, f"rm -f {marker}")
    ran: list[str] = []

    def first(ctx: HostContext) -> None:
        ran.append(f"first {ctx.name}")

    def second(ctx: HostContext) -> None:
        ran.append(f"second {ctx.name}")
        ctx.run(f"test -e {marker}")

    hive = Hive(root=hcli.root)
    book = Runbook("resume-hcli", (Step("first", first), Step("second", second)))
    assert list(hive.run(book, limit=victim).failed_hosts) == [victim]
    with pytest.raises(BadInput, match=f"used -l {victim}, this one asks for no -l/-T"):
        hive.run(book, resume=True)
    with pytest.raises(BadInput, match=f"this one asks for -l {victim} -T first"):
        hive.run(book, limit=victim, tags=["first"], resume=True)
    hcli.docker_exec(victim, f"touch {marker}")
    ran.clear()
    resumed = hive.run(book, limit=victim, resume=True)
    assert resumed.exit_code == EXIT_OK and resumed.resumed_from == "second" and ran == [f"second {victim}"]
    with pytest.raises(BadInput, match="nothing to resume"):
        hive.run(book, limit=victim, resume=True)
