"""The engine on real hosts: setup-hosts in parallel, idempotent, check mode, failures that stay local."""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hive_nornir.api import Hive
from hive_nornir.engine.context import HostContext
from hive_nornir.engine.errors import BadInput
from hive_nornir.engine.outcome import CHANGED, FAILED, OK, UNREACHABLE
from hive_nornir.engine.runbook import Runbook, Step
from hive_nornir.primitives.file import File
from hive_nornir.report.run_report import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE
from hive_nornir.runbooks.setup_hosts import RUNBOOK as SETUP_HOSTS

# The engine's behaviour is proven on the first cut of setup-hosts (its own steps, unchanged); the whole phase,
# with docker, sshd and the firewall, is tests/lab/test_setup_hosts_lab.py.
ENGINE_STEPS = ("ssh-connection", "base", "hostsfile", "users")
PHASE = Runbook("setup-hosts", tuple(s for s in SETUP_HOSTS.steps if s.name in ENGINE_STEPS))

pytestmark = pytest.mark.lab

WATCHED = "/etc/hosts /etc/hostname /etc/timezone /etc/passwd /etc/group /var/lib/dpkg/status"


def fingerprint(lab, host: str) -> str:  # type: ignore[no-untyped-def]
    """Hashes of every file setup-hosts touches, plus sudoers.d and the localtime link (observed via docker exec)."""
    _, out = lab.docker_exec(host, f"md5sum {WATCHED} 2>&1; ls -la /etc/sudoers.d; readlink /etc/localtime")
    return out


@pytest.fixture(scope="module")
def alice_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A key pair for a managed user, so the test can log in as that user."""
    key = Ed25519PrivateKey.generate()
    path = tmp_path_factory.mktemp("alice") / "id_ed25519"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path.with_suffix(".pub").write_bytes(pub + b" alice@test\n")
    return path


@pytest.fixture(scope="module")
def hive(lab, alice_key: Path) -> Hive:  # type: ignore[no-untyped-def]
    """The lab site plus group_vars a real site would have: time zone, an ops group, a user."""
    gv = lab.root / "inventory" / "group_vars"
    gv.mkdir(exist_ok=True)
    pub = alice_key.with_suffix(".pub").read_text().strip()
    (gv / "servers.yml").write_text(
        "hive_timezone: Asia/Tokyo\n"
        "hive_user_groups:\n  ops: {gid: 2000}\n"
        f"hive_users:\n  alice: {{uid: 2001, group: ops, id_rsa_pub: \"{pub}\"}}\n"
    )
    return Hive(root=lab.root, stage="private")


def test_check_mode_on_fresh_hosts_predicts_and_changes_nothing(lab, hive: Hive) -> None:  # type: ignore[no-untyped-def]
    before = {h: fingerprint(lab, h) for h in lab.hosts}
    report = hive.run(PHASE, check=True)
    after = {h: fingerprint(lab, h) for h in lab.hosts}
    assert before == after
    assert report.exit_code == EXIT_OK, report.text()
    assert report.check and report.changed > 0
    # alice's group only exists after an earlier (predicted) change: reported as assumed, not failed
    users = [o for o in report.outcomes if o.step == "users"]
    assert len(users) == 4 and all(o.status == CHANGED for o in users)
    assert any(c.assumed for o in users for c in o.changes)


def test_first_run_configures_every_host_in_parallel(lab, hive: Hive, alice_key: Path) -> None:  # type: ignore[no-untyped-def]
    report = hive.run(PHASE)
    assert report.exit_code == EXIT_OK, report.text()
    base = [o for o in report.outcomes if o.step == "base"]
    assert {o.host for o in base} == set(lab.hosts) and all(o.status == CHANGED for o in base)
    # parallel: every host's base step started before the first one finished
    first_end = min(o.started_at + o.seconds for o in base)
    assert all(o.started_at < first_end for o in base)
    for host in lab.hosts:
        short = host.split(".")[0]
        assert lab.docker_exec(host, "hostname")[1].strip() == short
        assert lab.docker_exec(host, "cat /etc/timezone")[1].strip() == "Asia/Tokyo"
        assert lab.docker_exec(host, "readlink /etc/localtime")[1].strip() == "/usr/share/zoneinfo/Asia/Tokyo"
        hosts_file = lab.docker_exec(host, "cat /etc/hosts")[1]
        for other in lab.hosts:
            assert f"{lab.state['hosts'][other]['private_ip']} {other} {other.split('.')[0]}" in hosts_file
        assert lab.docker_exec(host, "systemctl is-active sysstat")[1].strip() == "active"
        assert "uid=2001(alice) gid=2000(ops)" in lab.docker_exec(host, "id alice")[1]
    # the managed user logs in with its key and has NOPASSWD sudo through the ops group
    client = paramiko.SSHClient()
    client.load_host_keys(str(lab.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("127.0.0.1", port=lab.ssh_port(lab.hosts[1]), username="alice",
                   key_filename=str(alice_key), allow_agent=False, look_for_keys=False, timeout=10)
    _, out, _ = client.exec_command("sudo -n id -u")
    assert out.read().decode().strip() == "0"
    client.close()


def test_second_run_changes_nothing_in_one_round_trip_per_step(lab, hive: Hive) -> None:  # type: ignore[no-untyped-def]
    report = hive.run(PHASE)
    assert report.exit_code == EXIT_OK, report.text()
    assert report.changed == 0, report.changes()
    assert all(o.status == OK for o in report.outcomes)
    for row in report.summaries():
        steps = [o for o in report.outcomes if o.host == row.host]
        # facts once + one batched probe per step (ssh-connection only gathers facts)
        assert row.round_trips == len(steps), (row.host, row.round_trips)
    # and check mode now agrees: nothing to do
    assert hive.run(PHASE, check=True).changed == 0


def test_limit_and_tags_run_only_what_they_name(lab, hive: Hive) -> None:  # type: ignore[no-untyped-def]
    victim = lab.hosts[2]
    lab.docker_exec(victim, "sed -i '/BEGIN HIVE MANAGED BLOCK/,/END HIVE MANAGED BLOCK/d' /etc/hosts; "
                            "echo 'Etc/UTC' > /etc/timezone")
    report = hive.run(PHASE, tags=["hostsfile"], limit=victim.split(".")[0])
    assert {o.step for o in report.outcomes} == {"hostsfile"}
    assert {o.host for o in report.outcomes} == {victim} and report.changed == 1
    assert lab.docker_exec(victim, "cat /etc/timezone")[1].strip() == "Etc/UTC"  # base did not run
    assert hive.run(PHASE, tags=["base"], limit=victim).changed == 1


def _counting_unit(ctx: HostContext) -> None:
    """A oneshot unit whose every restart appends a line: lets the test count handler runs."""
    ctx.ensure([File(path="/etc/systemd/system/hive-count.service", content=(
        "[Unit]\nDescription=count restarts\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
        "ExecStart=/bin/sh -c 'echo run >> /var/tmp/hive-count.log'\n"))])
    if not ctx.check:
        ctx.run("systemctl daemon-reload")


def _touch(name: str, fail: bool = False):  # type: ignore[no-untyped-def]
    def task(ctx: HostContext) -> None:
        ctx.ensure([File(path=f"/etc/hive-{name}.conf", content=f"{name} {ctx.run_state.shared.get('v', 1)}\n")
                    .with_notify("restart:hive-count")])
        if fail:
            raise RuntimeError("boom after notify")
    return task


def test_handlers_run_once_and_survive_a_failed_run(lab, hive: Hive) -> None:  # type: ignore[no-untyped-def]
    host = lab.hosts[0]
    lab.docker_exec(host, "rm -f /var/tmp/hive-count.log /etc/hive-a.conf /etc/hive-b.conf")
    hive.run_task(_counting_unit, limit=host)
    twice = Runbook("handlers-test", (Step("a", _touch("a"), groups=("all",)), Step("b", _touch("b"), groups=("all",))))
    report = hive.run(twice, limit=host)
    assert report.exit_code == EXIT_OK, report.text()
    assert lab.docker_exec(host, "cat /var/tmp/hive-count.log")[1].split() == ["run"]  # once, not twice

    lab.docker_exec(host, "rm -f /etc/hive-a.conf")
    failing = Runbook("handlers-test", (Step("a", _touch("a", fail=True), groups=("all",)),))
    assert hive.run(failing, limit=host).exit_code == EXIT_FAILED
    assert lab.docker_exec(host, "cat /var/tmp/hive-count.log")[1].split() == ["run"]  # not run on failure
    assert "restart:hive-count" in (hive.context_dir / "handlers.json").read_text()
    report = hive.run(twice, limit=host)  # nothing changes, but the owed restart is honoured
    assert report.changed == 0 and any("restart:hive-count" in o.handlers_run for o in report.outcomes)
    assert lab.docker_exec(host, "cat /var/tmp/hive-count.log")[1].split() == ["run", "run"]


def test_command_timeout_fails_only_that_host(lab, hive: Hive) -> None:  # type: ignore[no-untyped-def]
    victim = lab.hosts[1]

    def slow_on_victim(ctx: HostContext) -> None:
        ctx.run("sleep 20" if ctx.name == victim else "true", timeout=1.5)

    report = hive.run_task(slow_on_victim, name="timeout-test")
    status = {o.host: o.status for o in report.outcomes}
    assert status.pop(victim) == FAILED and set(status.values()) == {OK}
    assert "1.5" in next(o.error for o in report.outcomes if o.host == victim)
    assert report.exit_code == EXIT_FAILED
    again = hive.run_task(lambda ctx: ctx.run("true"), limit=victim)
    assert again.exit_code == EXIT_OK


def test_host_with_sshd_stopped_fails_alone(lab, hive: Hive) -> None:  # type: ignore[no-untyped-def]
    victim = lab.hosts[2]
    lab.docker_exec(victim, "systemctl stop ssh.socket ssh.service 2>/dev/null; systemctl stop ssh")
    try:
        report = hive.run(PHASE, tags=["base"])
    finally:
        lab.docker_exec(victim, "systemctl start ssh")
    status = {o.host: o.status for o in report.outcomes}
    assert status.pop(victim) == UNREACHABLE and set(status.values()) == {OK}
    assert report.exit_code == EXIT_UNREACHABLE
    assert victim in report.text() and "base" in report.text()


def test_bad_site_file_changes_nothing_anywhere(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "broken"
    subprocess.run(["cp", "-a", str(lab.root), str(root)], check=True)
    site = root / "inventory" / "hive.yml"
    site.write_text(site.read_text().replace("number_of_hosts: 4", "number_of_hosts: four"))
    for host in lab.hosts:
        lab.docker_exec(host, "echo 'Etc/UTC' > /etc/timezone")
    before = {h: fingerprint(lab, h) for h in lab.hosts}
    proc = subprocess.run([sys.executable, "-m", "hive_nornir", "-r", str(root), "run", "setup-hosts"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_BAD_INPUT
    assert f"{site}:" in proc.stderr and "number_of_hosts" in proc.stderr and "four" in proc.stderr
    assert before == {h: fingerprint(lab, h) for h in lab.hosts}


def test_serial_batches_do_not_overlap(lab, hive: Hive) -> None:  # type: ignore[no-untyped-def]
    def pause(ctx: HostContext) -> None:
        ctx.run("sleep 0.5", sudo=False)

    report = hive.run(Runbook("serial-test", (Step("rolling", pause, serial=1),)))
    spans = sorted((o.started_at, o.started_at + o.seconds) for o in report.outcomes)
    assert len(spans) == 4
    # seconds are rounded to 1 ms (up to 0.5 ms up) and started_at is wall-clock: allow 1 ms; an overlap is ~0.5 s
    assert all(prev_end <= start + 0.001 for (_, prev_end), (start, _) in pairwise(spans)), spans


def test_resume_restarts_at_the_failed_step(lab, hive: Hive) -> None:  # type: ignore[no-untyped-def]
    victim = lab.hosts[0]
    marker = "/var/tmp/hive-resume-ok"
    for host in lab.hosts:
        lab.docker_exec(host, f"rm -f {marker}" if host == victim else f"touch {marker}")
    ran: list[str] = []

    def first(ctx: HostContext) -> None:
        ran.append("first")

    def second(ctx: HostContext) -> None:
        ran.append("second")
        ctx.run(f"test -e {marker}")

    book = Runbook("resume-test", (Step("first", first), Step("second", second)))
    failed = hive.run(book)
    assert failed.exit_code == EXIT_FAILED and list(failed.failed_hosts) == [victim]
    lab.docker_exec(victim, f"touch {marker}")
    ran.clear()
    resumed = hive.run(book, resume=True)
    assert resumed.exit_code == EXIT_OK and resumed.resumed_from == "second"
    assert set(ran) == {"second"}
    with pytest.raises(BadInput, match="nothing to resume"):  # the last run finished cleanly
        hive.run(book, resume=True)
