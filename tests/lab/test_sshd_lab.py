"""sshd hardening on real Debian 12 sshd hosts: applied safely, refused or rolled back when it would lock us out."""

from __future__ import annotations

import json
from typing import Any

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import hive_nornir.tasks.ssh.sshd as sshd_task
from hive_nornir.api import Hive
from hive_nornir.engine.context import HostContext
from hive_nornir.engine.outcome import CHANGED, OK
from hive_nornir.engine.runbook import Runbook, Step
from hive_nornir.facts import canned
from hive_nornir.report.run_report import EXIT_FAILED, EXIT_OK
from hive_nornir.runbooks.setup_hosts import RUNBOOK
from hive_nornir.tasks.ssh.safety import DROPIN, Setting, dropin_text, wanted_settings
from hive_nornir.tasks.ssh.sshd import sshd

pytestmark = pytest.mark.lab

SITE = "hsshd"
CIDR = "10.81.0.0/24"
USERS = "hive_users:\n  alice: {uid: 2001}\n"  # users are managed -> PermitRootLogin no
BOOK = Runbook("sshd-lab", (Step("sshd", sshd, tags=("sshd", "base", "setup-hosts")),))
WANTED = {"passwordauthentication": "no", "kbdinteractiveauthentication": "no", "usedns": "no",
          "logingracetime": "0", "permitrootlogin": "no"}


class ControllerGone(BaseException):
    """Like a SIGKILLed controller: no except Exception in the task can catch it and clean up in-band."""


def etc_ssh(lab: Any, host: str) -> str:
    """Every file under /etc/ssh (names, modes, hashes) and leftovers in /run: must not move on a refusal."""
    _, out = lab.docker_exec(host, "cd /etc/ssh && find . -printf '%p %m %U\\n' | sort && "
                                   "find . -type f -exec md5sum {} + | sort -k2; ls /run | grep hive-sshd")
    return out


def effective(lab: Any, host: str) -> dict[str, str]:
    """What sshd would use now (`sshd -T` inside the host, observation only)."""
    _, out = lab.docker_exec(host, "sshd -T")
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def main_pid(lab: Any, host: str) -> str:
    """sshd's PID: a reload (SIGHUP, re-exec in place) keeps it, a restart would not."""
    return lab.docker_exec(host, "systemctl show -p MainPID --value ssh")[1].strip()


def leftovers(lab: Any, host: str) -> str:
    """Rollback timers or scripts still around (must be none once the step is over)."""
    _, out = lab.docker_exec(host, "systemctl list-timers --all --no-legend | grep hive-sshd; ls /run | grep hive-sshd")
    return out.strip()


def can_login(lab: Any, host: str, user: str | None = None) -> bool:
    """A brand-new SSH login with the stage key, from the controller through the published port."""
    try:
        lab.ssh(host, user).close()
        return True
    except paramiko.AuthenticationException:
        return False


def test_hardening_applies_reloads_and_then_changes_nothing(make_lab: Any) -> None:
    lab = make_lab(SITE, CIDR, 2, group_vars=USERS)
    hive = Hive(lab.root, stage="private")
    before = {h: etc_ssh(lab, h) for h in lab.hosts}
    pids = {h: main_pid(lab, h) for h in lab.hosts}

    check = hive.run(BOOK, check=True)
    assert check.exit_code == EXIT_OK, check.text()
    assert all(o.status == CHANGED for o in check.outcomes) and len(check.outcomes) == 2
    assert {c.ident for o in check.outcomes for c in o.changes} == {f"file[{DROPIN}]", "service[ssh]"}
    assert before == {h: etc_ssh(lab, h) for h in lab.hosts}  # check mode: nothing on the hosts moved

    report = hive.run(BOOK)
    assert report.exit_code == EXIT_OK, report.text()
    assert all(o.status == CHANGED for o in report.outcomes)
    settings = wanted_settings(canned("debian"), users_managed=True, port=None)  # lab: OpenSSH 9.2
    for host in lab.hosts:
        assert lab.docker_exec(host, f"cat {DROPIN}")[1] == dropin_text(settings)
        eff = effective(lab, host)
        assert {k: eff.get(k) for k in WANTED} == WANTED
        assert main_pid(lab, host) == pids[host]  # reloaded, not restarted
        assert leftovers(lab, host) == ""  # the dead-man timer was cancelled after the fresh login
        assert can_login(lab, host)  # admin still gets in ...
        assert not can_login(lab, host, "root")  # ... and root, which accepted the key before, no longer does

    again = hive.run(BOOK)
    assert again.exit_code == EXIT_OK and again.changed == 0, again.changes()
    assert all(o.status == OK for o in again.outcomes)
    assert all(o.round_trips <= 2 for o in again.outcomes)  # facts + one read-only probe
    assert hive.run(BOOK, check=True).changed == 0


def test_lockouts_are_refused_before_anything_changes(make_lab: Any) -> None:
    lab = make_lab(SITE, CIDR, 1, separate=False, group_vars=USERS)
    host = lab.hosts[0]
    before, pid = etc_ssh(lab, host), main_pid(lab, host)

    # 1. hive_nornir logs in as root (root accepts the stage key) while users are managed: PermitRootLogin no
    state_file = lab.context_dir / "state.json"
    saved = state_file.read_text()
    state = json.loads(saved)
    state["hosts"][host]["user"] = "root"
    state_file.write_text(json.dumps(state))
    try:
        report = Hive(lab.root, stage="private").run(BOOK)
    finally:
        state_file.write_text(saved)
    assert report.exit_code == EXIT_FAILED
    error = report.outcomes[0].error
    assert "nothing changed" in error and "root" in error and "PermitRootLogin no" in error
    assert etc_ssh(lab, host) == before and main_pid(lab, host) == pid
    assert can_login(lab, host, "root")

    # 2. Port: the controller reaches sshd only through a published 127.0.0.1 port that docker maps to the
    # container's port 22, so sshd listening on 2222 instead would be out of the controller's reach.
    (lab.root / "inventory" / "host_vars").mkdir(exist_ok=True)
    (lab.root / "inventory" / "host_vars" / f"{host}.yml").write_text("hive_sshd_port: 2222\n")
    report = Hive(lab.root, stage="private").run(BOOK)
    assert report.exit_code == EXIT_FAILED
    error = report.outcomes[0].error
    assert "nothing changed" in error and "Port 2222" in error and "port 22" in error
    assert etc_ssh(lab, host) == before and main_pid(lab, host) == pid

    # the port sshd already listens on is fine, and a root login stays possible until then
    (lab.root / "inventory" / "host_vars" / f"{host}.yml").write_text("hive_sshd_port: 22\n")
    report = Hive(lab.root, stage="private").run(BOOK)
    assert report.exit_code == EXIT_OK, report.text()
    assert effective(lab, host)["port"] == "22"
    assert "Port 22\n" in lab.docker_exec(host, f"cat {DROPIN}")[1]


def test_dropin_overridden_by_an_earlier_file_is_rolled_back(make_lab: Any) -> None:
    lab = make_lab(SITE, CIDR, 1, separate=False, group_vars=USERS)
    host = lab.hosts[0]
    lab.docker_exec(host, "echo 'PasswordAuthentication yes' > /etc/ssh/sshd_config.d/00-local.conf")
    before, pid, eff = etc_ssh(lab, host), main_pid(lab, host), effective(lab, host)

    check = Hive(lab.root, stage="private").run(BOOK, check=True)  # predicted from the files, nothing written
    assert check.exit_code == EXIT_FAILED
    assert "would roll it back: /etc/ssh/sshd_config.d/00-local.conf:1: PasswordAuthentication yes comes first" \
        in check.outcomes[0].error
    assert etc_ssh(lab, host) == before

    report = Hive(lab.root, stage="private").run(BOOK)  # sshd -T is the authority: written, checked, rolled back
    assert report.exit_code == EXIT_FAILED
    error = report.outcomes[0].error
    assert "PasswordAuthentication: wanted no, sshd uses yes" in error
    assert "00-local.conf:1:PasswordAuthentication yes" in error and "rolled back" in error
    assert etc_ssh(lab, host) == before  # no drop-in, no backup, no candidate, no rollback script left
    assert main_pid(lab, host) == pid and effective(lab, host) == eff
    assert can_login(lab, host) and leftovers(lab, host) == ""


def test_whole_config_rejected_by_sshd_is_rolled_back(make_lab: Any) -> None:
    lab = make_lab(SITE, CIDR, 1, separate=False, group_vars=USERS)
    host = lab.hosts[0]
    # valid alone, our drop-in still makes `sshd -t` of the whole config fail because of a broken sibling
    lab.docker_exec(host, "echo 'PermitRootLogin maybe' > /etc/ssh/sshd_config.d/20-bad.conf")
    before, pid = etc_ssh(lab, host), main_pid(lab, host)

    check = Hive(lab.root, stage="private").run(BOOK, check=True)
    assert check.exit_code == EXIT_FAILED and "a real run would roll back" in check.outcomes[0].error
    assert "20-bad.conf line 1" in check.outcomes[0].error and etc_ssh(lab, host) == before

    report = Hive(lab.root, stage="private").run(BOOK)
    assert report.exit_code == EXIT_FAILED
    error = report.outcomes[0].error
    assert "sshd -t rejects the whole config" in error and "20-bad.conf line 1" in error and "rolled back" in error
    assert etc_ssh(lab, host) == before and main_pid(lab, host) == pid
    assert can_login(lab, host) and leftovers(lab, host) == ""


def test_dropin_rejected_alone_changes_nothing(make_lab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = make_lab(SITE, CIDR, 1, separate=False, group_vars=USERS)
    host = lab.hosts[0]
    before = etc_ssh(lab, host)
    original = sshd_task.settings_for

    def with_typo(ctx: HostContext) -> list[Setting]:
        return [*original(ctx), Setting("PermitRootLogin", "maybe", check=False)]

    monkeypatch.setattr(sshd_task, "settings_for", with_typo)
    report = Hive(lab.root, stage="private").run(BOOK)
    assert report.exit_code == EXIT_FAILED
    error = report.outcomes[0].error
    assert "sshd rejects the drop-in on its own (nothing changed)" in error and "maybe" in error
    assert etc_ssh(lab, host) == before and can_login(lab, host)


def test_fresh_login_failure_after_reload_is_rolled_back(make_lab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = make_lab(SITE, CIDR, 1, separate=False, group_vars=USERS)
    host = lab.hosts[0]
    before, eff = etc_ssh(lab, host), effective(lab, host)
    original = sshd_task.settings_for

    def locking(ctx: HostContext) -> list[Setting]:
        # valid for sshd -t, every wanted value effective in sshd -T, nothing the access check reads: only a
        # real new login shows the lock-out (no key file is read any more)
        return [*original(ctx), Setting("AuthorizedKeysFile", "none", check=False)]

    monkeypatch.setattr(sshd_task, "settings_for", locking)
    report = Hive(lab.root, stage="private").run(BOOK)
    assert report.exit_code == EXIT_FAILED
    error = report.outcomes[0].error
    assert "a fresh SSH login failed after the reload" in error and "a fresh login works again" in error
    assert etc_ssh(lab, host) == before and effective(lab, host) == eff
    assert can_login(lab, host) and can_login(lab, host, "root") and leftovers(lab, host) == ""

    # a drop-in whose whole config refuses our login is caught by sshd -T before any reload
    def refusing(ctx: HostContext) -> list[Setting]:
        return [*original(ctx), Setting("AllowUsers", "nobody", check=False)]

    monkeypatch.setattr(sshd_task, "settings_for", refusing)
    socket = listener(lab, host)
    report = Hive(lab.root, stage="private").run(BOOK)
    assert report.exit_code == EXIT_FAILED
    error = report.outcomes[0].error
    assert "so sshd was not reloaded: AllowUsers nobody does not match" in error and "10-hive.conf" in error
    assert "rolled back" in error and listener(lab, host) == socket
    assert etc_ssh(lab, host) == before and can_login(lab, host) and leftovers(lab, host) == ""


def listener(lab: Any, host: str) -> str:
    """sshd's listening sockets (inodes): a reload re-executes sshd, which opens new ones."""
    return lab.docker_exec(host, "ss -Hltne | grep -o 'ino:[0-9]*' | sort")[1]


LK3, LK3_CIDR = "lk3", "10.132.0.0/24"
LOCAL = "/etc/ssh/sshd_config.d/00-local.conf"


def test_someone_elses_pending_lockout_is_refused_and_never_reloaded(make_lab: Any) -> None:
    """Issue 10 #7: an edit in another drop-in that sshd has not loaded yet (Port 2200, AllowUsers nobody) would
    lock us out at the reload; it is refused with that file and line, sshd is not reloaded, we still get in."""
    lab = make_lab(LK3, LK3_CIDR, 1, separate=False, group_vars=USERS)
    host = lab.hosts[0]
    hive = Hive(lab.root, stage="private")
    for pending, why in (("Port 2200", "sshd would listen on"), ("AllowUsers nobody", "AllowUsers nobody does not "
                                                                                      "match admin")):
        lab.docker_exec(host, f"echo '{pending}' > {LOCAL}")  # written, not loaded: sshd still serves the old config
        before, socket = etc_ssh(lab, host), listener(lab, host)
        for check in (True, False):
            report = hive.run(BOOK, check=check)
            assert report.exit_code == EXIT_FAILED, report.text()
            error = report.outcomes[0].error
            assert "refused, nothing changed, sshd not reloaded" in error and why in error, error
            assert f"{LOCAL}:1: {pending}" in error, error
            assert etc_ssh(lab, host) == before and listener(lab, host) == socket  # no file, no reload
            assert can_login(lab, host)
        lab.docker_exec(host, f"rm {LOCAL}")
    report = hive.run(BOOK)  # the pending edit gone: the hardening goes in as usual
    assert report.exit_code == EXIT_OK, report.text()
    assert can_login(lab, host)


def test_missing_include_is_added_on_top(make_lab: Any) -> None:
    lab = make_lab(SITE, CIDR, 1, separate=False, group_vars=USERS)
    host = lab.hosts[0]
    # an EL8-like main file: no Include, and it sets PasswordAuthentication yes itself
    lab.docker_exec(host, "sed -i '/^Include/d' /etc/ssh/sshd_config && "
                          "echo 'PasswordAuthentication yes' >> /etc/ssh/sshd_config && systemctl reload ssh")
    hive = Hive(lab.root, stage="private")
    report = hive.run(BOOK)
    assert report.exit_code == EXIT_OK, report.text()
    assert {c.ident for c in report.outcomes[0].changes} == {
        "line[/etc/ssh/sshd_config:Include]", f"file[{DROPIN}]", "service[ssh]"}
    lines = [ln for ln in lab.docker_exec(host, "cat /etc/ssh/sshd_config")[1].splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "Include /etc/ssh/sshd_config.d/*.conf"
    assert effective(lab, host)["passwordauthentication"] == "no"
    assert hive.run(BOOK).changed == 0


def test_deadman_restores_the_host_when_the_controller_vanishes(make_lab: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    lab = make_lab(SITE, CIDR, 1, separate=False, group_vars=USERS)
    host = lab.hosts[0]
    before, eff = etc_ssh(lab, host), effective(lab, host)

    def controller_dies(ctx: HostContext) -> float:
        raise ControllerGone("controller killed between the reload and the fresh login")

    monkeypatch.setattr(sshd_task, "fresh_login", controller_dies)
    with pytest.raises(ControllerGone):
        Hive(lab.root, stage="private").run(BOOK)
    assert effective(lab, host)["permitrootlogin"] == "no"  # the change is live, nothing undid it in-band
    timer = leftovers(lab, host).split()
    unit = next(w for w in timer if w.startswith("hive-sshd-rollback-") and w.endswith(".timer"))
    # what the timer does when it fires (started now instead of waiting for it)
    rc, out = lab.docker_exec(host, f"systemctl start --wait {unit.removesuffix('.timer')}.service")
    assert rc == 0, out
    lab.docker_exec(host, f"systemctl stop {unit}")
    assert etc_ssh(lab, host) == before and effective(lab, host) == eff
    assert can_login(lab, host, "root")


def test_in_setup_hosts_after_users_one_round_trip_per_step(make_lab: Any, tmp_path: Any) -> None:
    """Where the lead wires it (after users): managed users still log in, and a no-change run stays cheap."""
    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "alice"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                           serialization.NoEncryption()))
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    lab = make_lab(SITE, CIDR, 2, group_vars=f"hive_users:\n  alice: {{uid: 2001, id_rsa_pub: \"{pub} alice\"}}\n")
    steps = tuple(s for s in RUNBOOK.steps if s.name in ("ssh-connection", "users"))
    book = Runbook("setup-hosts-sshd", (*steps, *BOOK.steps))
    hive = Hive(lab.root, stage="private")
    first = hive.run(book)
    assert first.exit_code == EXIT_OK, first.text()
    for host in lab.hosts:
        client = paramiko.SSHClient()
        client.load_host_keys(str(lab.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect("127.0.0.1", port=lab.ssh_port(host), username="alice", key_filename=str(key_file),
                       allow_agent=False, look_for_keys=False, timeout=10)
        client.close()
        assert not can_login(lab, host, "root")
    again = hive.run(book)
    assert again.exit_code == EXIT_OK and again.changed == 0, again.changes()
    for row in again.summaries():
        assert row.round_trips == len(book.steps), (row.host, row.round_trips)  # facts once + 1 probe per step
