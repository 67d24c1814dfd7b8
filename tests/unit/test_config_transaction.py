"""The config-transaction primitive: its plan from fixture tables, and its run for real with sh on local files.

The run tests use a local stand-in for the host (commands run with sh here, files in a temp dir) because what is
proven is the order and the rollback on real files; the same primitive is proven on real sshd hosts through the
sshd step (tests/lab/test_sshd_lab.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_host import FakeHost, FakeSession, run_here

from hive_nornir.engine.errors import StepFailed
from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.config_transaction import (
    CANDIDATE,
    ConfigFile,
    ConfigTransaction,
    Script,
    backup_path,
    run_transaction,
    shell,
)

NO_SYSTEMD = canned(init="other")
CONF = "/etc/keepalived/keepalived.conf"
CAND = "/etc/keepalived/.keepalived.conf.hive-1"
KEEPALIVED = ConfigTransaction(
    name="keepalived",
    files=(ConfigFile(CONF, b"vrrp_instance VI_1 {}\n", existed=True, mode="0640",
                      validate=("keepalived", "--config-test", f"--use-file={CANDIDATE}")),),
    validate_whole=("keepalived", "--config-test"),
    reload=("systemctl", "reload", "keepalived"),
)
RES = "/etc/drbd.d/r0.res"
DRBD = ConfigTransaction(
    name="drbd",
    files=(ConfigFile(RES, b"resource r0 {}\n", existed=False,
                      validate=("drbdadm", "-c", "/etc/drbd.conf", "-t", CANDIDATE, "sh-nop")),),
    validate_whole=("drbdadm", "-c", "/etc/drbd.conf", "sh-nop"),
    reload=("drbdadm", "adjust", "r0"),
    deadman_seconds=0,
)
CHEF = ConfigTransaction(
    name="chef-server",
    files=(ConfigFile("/etc/opscode/chef-server.rb", b"topology 'ha'\n", existed=True, mode="0640",
                      make_dir=True),),
    reload=Script("chef-server-ctl reconfigure >/dev/null"),
)

# (transaction, candidates) -> exact vet, install, whole, reload, rollback before and after the reload
PLANS: list[tuple[str, ConfigTransaction, dict[str, str], dict[str, Any]]] = [
    ("keepalived", KEEPALIVED, {CONF: CAND}, {
        "vets": [f"keepalived --config-test --use-file={CAND}"],
        "install": ["set -e", f"cp -p {CONF} '{CONF}.S.hive~'", f"mv -f {CAND} {CONF}"],
        "whole": "keepalived --config-test",
        "reload": "systemctl reload keepalived",
        "rollback": [f"if [ -f '{CONF}.S.hive~' ]; then mv -f '{CONF}.S.hive~' {CONF}; fi"],
        "rollback_reloaded": [f"if [ -f '{CONF}.S.hive~' ]; then mv -f '{CONF}.S.hive~' {CONF}; fi",
                              "keepalived --config-test || exit $?", "systemctl reload keepalived"],
        "mkdirs": [],
    }),
    ("drbd: a new resource file is removed again", DRBD, {RES: "/etc/drbd.d/.r0.res.hive-1"}, {
        "vets": ["drbdadm -c /etc/drbd.conf -t /etc/drbd.d/.r0.res.hive-1 sh-nop"],
        "install": ["set -e", f"mv -f /etc/drbd.d/.r0.res.hive-1 {RES}"],
        "whole": "drbdadm -c /etc/drbd.conf sh-nop",
        "reload": "drbdadm adjust r0",
        "rollback": [f"rm -f {RES}"],
        "rollback_reloaded": [f"rm -f {RES}", "drbdadm -c /etc/drbd.conf sh-nop || exit $?", "drbdadm adjust r0"],
        "mkdirs": [],
    }),
    ("chef-server.rb: no validator, a script reload, a new directory", CHEF,
     {"/etc/opscode/chef-server.rb": "/etc/opscode/.c 1"}, {
        "vets": [],
        "install": ["set -e", "cp -p /etc/opscode/chef-server.rb '/etc/opscode/chef-server.rb.S.hive~'",
                    "mv -f '/etc/opscode/.c 1' /etc/opscode/chef-server.rb"],
        "whole": None,
        "reload": "chef-server-ctl reconfigure >/dev/null",
        "rollback": ["if [ -f '/etc/opscode/chef-server.rb.S.hive~' ]; then "
                     "mv -f '/etc/opscode/chef-server.rb.S.hive~' /etc/opscode/chef-server.rb; fi",
                     "rmdir /etc/opscode 2>/dev/null || true"],
        "rollback_reloaded": ["if [ -f '/etc/opscode/chef-server.rb.S.hive~' ]; then "
                              "mv -f '/etc/opscode/chef-server.rb.S.hive~' /etc/opscode/chef-server.rb; fi",
                              "rmdir /etc/opscode 2>/dev/null || true", "chef-server-ctl reconfigure >/dev/null"],
        "mkdirs": ["mkdir -p -m 0755 /etc/opscode"],
    }),
]


@pytest.mark.parametrize(("case", "tx", "candidates", "want"), PLANS, ids=[p[0] for p in PLANS])
def test_plan_table(case: str, tx: ConfigTransaction, candidates: dict[str, str], want: dict[str, Any]) -> None:
    plan = tx.plan("S", candidates)
    got = {"vets": [c for _, c in plan.vets()], "install": plan.install().splitlines(), "whole": plan.whole(),
           "reload": plan.reload(), "rollback": plan.rollback(reload=False).splitlines(),
           "rollback_reloaded": plan.rollback(reload=True).splitlines(), "mkdirs": plan.mkdirs()}
    assert got == want, "\n".join(f"{k}:\n  wanted {want[k]!r}\n  got    {got[k]!r}" for k in want if got[k] != want[k])


def test_deadman_runs_the_rollback_and_reload_and_removes_itself() -> None:
    plan = KEEPALIVED.plan("S", {CONF: CAND})
    assert plan.unit == "hive-keepalived-rollback-S"
    assert plan.arm() == ("systemd-run --quiet --unit=hive-keepalived-rollback-S --on-active=120 /bin/sh "
                          "/run/hive-keepalived-rollback-S.sh")
    assert plan.deadman_body() == ("rm -f /run/hive-keepalived-rollback-S.sh\n" + plan.rollback(reload=True) + "\n")
    assert plan.disarm() == ("systemctl stop hive-keepalived-rollback-S.timer 2>/dev/null; "
                             "rm -f /run/hive-keepalived-rollback-S.sh")


def test_commands_are_argv_never_pasted() -> None:
    assert shell(("echo", "a b;reboot", f"--f={CANDIDATE}"), "/x/.c y") == "echo 'a b;reboot' '--f=/x/.c y'"
    assert shell(Script("a && b")) == "a && b"
    with pytest.raises(ValueError, match="empty argv"):
        shell(())
    with pytest.raises(ValueError, match="must name the candidate"):
        ConfigFile("/etc/x.conf", b"", existed=False, validate=("x", "-t"))
    with pytest.raises(ValueError, match="absolute"):
        ConfigFile("x.conf", b"", existed=False)
    with pytest.raises(ValueError, match="each file once"):
        ConfigTransaction("x", (ConfigFile("/a", b"", False), ConfigFile("/a", b"", False)))
    with pytest.raises(ValueError, match="transaction name"):
        ConfigTransaction("x y", (ConfigFile("/a", b"", False),))
    assert backup_path("/a/b.conf", "S") == "/a/b.conf.S.hive~"


# -- run for real, with sh on local files -------------------------------------------------------------------------


def local_host(tmp_path: Path, facts: Facts = NO_SYSTEMD) -> FakeHost:
    """The host is this machine: commands run with sh (this machine's systemd is not ours to touch: systemd-run
    and systemctl only succeed), candidates are written next to their target under tmp_path."""
    session = FakeSession(run_here(skip=("systemd-run ", "systemctl ")), local_root=tmp_path)
    return FakeHost(facts=facts, session=session)


def local_tx(tmp_path: Path, content: bytes, **hooks: Any) -> tuple[ConfigTransaction, Path]:
    """A service whose config (`ok old` now) must contain `ok`; its reload copies the config to `loaded`."""
    conf = tmp_path / "svc" / "svc.conf"
    conf.parent.mkdir(exist_ok=True)
    conf.write_bytes(b"ok old\n")
    loaded = tmp_path / "loaded"
    kw: dict[str, Any] = {
        "validate_whole": ("grep", "-q", "ok", str(conf)),
        "reload": ("cp", str(conf), str(loaded)),
        "deadman_seconds": 0,
        **hooks,
    }
    return ConfigTransaction("svc", (ConfigFile(str(conf), content, existed=conf.exists(),
                                                validate=("grep", "-q", "ok", CANDIDATE)),), **kw), conf


def leftovers(directory: Path) -> list[str]:
    """Candidates or backups left next to the config."""
    return sorted(p.name for p in directory.iterdir() if p.name != "svc.conf")


def test_success_installs_keeps_a_backup_reloads_and_proves(tmp_path: Path) -> None:
    proofs: list[str] = []

    def prove() -> str:
        proofs.append("x")
        return ""

    tx, conf = local_tx(tmp_path, b"ok new\n", prove=prove)
    run_transaction(local_host(tmp_path), tx, stamp="S")
    assert conf.read_bytes() == b"ok new\n" and (tmp_path / "loaded").read_bytes() == b"ok new\n"
    assert leftovers(conf.parent) == ["svc.conf.S.hive~"] and proofs == ["x"]


def test_a_rejected_candidate_changes_nothing(tmp_path: Path) -> None:
    tx, conf = local_tx(tmp_path, b"bad\n")
    with pytest.raises(StepFailed, match=r"svc rejects .*svc\.conf \(nothing changed\)"):
        run_transaction(local_host(tmp_path), tx, stamp="S")
    assert conf.read_bytes() == b"ok old\n" and leftovers(conf.parent) == []
    assert not (tmp_path / "loaded").exists()


@pytest.mark.parametrize(("hooks", "message", "reloaded"), [
    ({"validate_whole": ("false",)}, "false rejects the whole config", False),
    ({"effective": lambda: "the effective value is wrong"}, "the effective value is wrong; rolled back", False),
    ({"reload": ("sh", "-c", "exit 3")}, "reloading svc failed", True),
    ({"prove": lambda: "no fresh login", "prove_name": "a fresh login"},
     "no fresh login; rolled back, but a fresh login still fails: no fresh login", True),
])
def test_every_failure_after_the_rename_restores_the_old_file(tmp_path: Path, hooks: dict[str, Any], message: str,
                                                             reloaded: bool) -> None:
    tx, conf = local_tx(tmp_path, b"ok new\n", **hooks)
    ctx = local_host(tmp_path)
    with pytest.raises(StepFailed, match=message):
        run_transaction(ctx, tx, stamp="S")
    assert conf.read_bytes() == b"ok old\n" and leftovers(conf.parent) == []
    rollback = tx.plan("S", {}).rollback(reload=reloaded)
    assert ctx.result.ran[-1] == rollback  # rolled back, reloading again only once the reload had started


def test_a_new_file_and_its_directory_go_away_on_rollback(tmp_path: Path) -> None:
    conf = tmp_path / "new" / "svc.conf"
    tx = ConfigTransaction("svc", (ConfigFile(str(conf), b"ok\n", existed=False, make_dir=True),),
                           effective=lambda: "no", deadman_seconds=0)
    with pytest.raises(StepFailed, match="no; rolled back"):
        run_transaction(local_host(tmp_path), tx, stamp="S")
    assert not conf.parent.exists()


def test_an_unexpected_error_rolls_back_and_reloads(tmp_path: Path) -> None:
    def boom() -> str:
        raise ConnectionError("link lost")

    tx, conf = local_tx(tmp_path, b"ok new\n", prove=boom)
    with pytest.raises(StepFailed, match="unexpected error while changing svc: ConnectionError: link lost"):
        run_transaction(local_host(tmp_path), tx, stamp="S")
    assert conf.read_bytes() == b"ok old\n" and (tmp_path / "loaded").read_bytes() == b"ok old\n"


def test_the_deadman_is_armed_on_systemd_and_cancelled_after_the_proof(tmp_path: Path) -> None:
    tx, _ = local_tx(tmp_path, b"ok new\n", deadman_seconds=120)
    ctx = local_host(tmp_path, canned(init="systemd"))
    run_transaction(ctx, tx, stamp="S")
    plan = tx.plan("S", {})
    assert ctx.session.uploaded == [plan.deadman_script]
    arm, disarm = ctx.result.ran.index(plan.arm()), ctx.result.ran.index(plan.disarm())
    install = next(i for i, c in enumerate(ctx.result.ran) if c.startswith("set -e"))
    assert arm < install < disarm == len(ctx.result.ran) - 1  # armed before the first live change, cancelled last
