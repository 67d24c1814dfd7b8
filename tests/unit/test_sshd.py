"""sshd hardening planned offline: canned facts of both families in, exact drop-in, commands and refusals out."""

from __future__ import annotations

import base64
import re
import subprocess
from typing import Any

import pytest
from fake_host import FakeHost, FakeSession

import hive_nornir.tasks.ssh.sshd as sshd_task
from hive_nornir.engine.errors import StepFailed
from hive_nornir.facts import Facts, canned
from hive_nornir.tasks.ssh.access import Login, refusals, setter_lines
from hive_nornir.tasks.ssh.reach import sshd_port
from hive_nornir.tasks.ssh.safety import (
    _CONNECTION_WALK,
    DROPIN,
    HEADER,
    INCLUDE_LINE,
    Connection,
    HostState,
    Setting,
    dropin_text,
    first_values,
    has_include,
    lockout_reasons,
    match_spec,
    mismatches,
    openssh_version,
    parse_connection,
    parse_effective,
    parse_probe,
    plan_changes,
    predicted_overrides,
    probe_script,
    read_order,
    regresshion_exposed,
    reload_script,
    service_name,
    setters_command,
    wanted_settings,
    with_include,
)
from hive_nornir.tasks.ssh.sshd import sshd

DEBIAN = canned("debian")  # OpenSSH 9.2p1
EL9 = canned("redhat")  # OpenSSH 8.7p1
EL8 = canned("redhat", os_version="8.10", openssh="8.0p1")
DEBIAN_MAIN = "Include /etc/ssh/sshd_config.d/*.conf\n\nKbdInteractiveAuthentication no\nUsePAM yes\n"
EL8_MAIN = "HostKey /etc/ssh/ssh_host_rsa_key\nPasswordAuthentication yes\nChallengeResponseAuthentication no\n"
CONN = Connection("10.81.0.1", 40000, "10.81.0.4", 22)


def keywords(settings: list[Setting]) -> list[str]:
    return [f"{s.keyword} {s.value}" for s in settings]


# -- what is wanted ---------------------------------------------------------------------------------------------


def test_debian_12_gets_login_grace_time_and_no_challenge_response_alias() -> None:
    assert keywords(wanted_settings(DEBIAN, users_managed=False, port=None)) == [
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UseDNS no", "LoginGraceTime 0"]


def test_el9_is_exposed_too_and_users_and_port_add_their_lines() -> None:
    assert keywords(wanted_settings(EL9, users_managed=True, port=2222)) == [
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UseDNS no", "LoginGraceTime 0",
        "PermitRootLogin no", "Port 2222"]


def test_el8_writes_challenge_response_and_is_not_in_the_regresshion_range() -> None:
    settings = wanted_settings(EL8, users_managed=False, port=None)
    assert keywords(settings) == ["PasswordAuthentication no", "KbdInteractiveAuthentication no",
                                  "ChallengeResponseAuthentication no", "UseDNS no"]
    assert all(s.check for s in settings)


def test_unknown_version_writes_both_but_checks_only_what_every_sshd_prints() -> None:
    settings = wanted_settings(canned("debian", openssh=""), users_managed=False, port=None)
    cra = [s for s in settings if s.keyword == "ChallengeResponseAuthentication"]
    assert len(cra) == 1 and not cra[0].check
    assert "LoginGraceTime" not in {s.keyword for s in settings}


@pytest.mark.parametrize(("version", "exposed"), [
    ("8.4p1", False), ("8.5p1", True), ("9.2p1", True), ("9.2", True), ("9.8p1", True), ("9.8p2", False),
    ("9.9p1", False), ("7.4p1", False), ("", False), ("garbage", False)])
def test_regresshion_range_is_hive_builders(version: str, exposed: bool) -> None:
    assert regresshion_exposed(version) is exposed


def test_version_parse() -> None:
    assert openssh_version("9.2p1") == (9, 2, 1)
    assert openssh_version("9.2") == (9, 2, 1)
    assert openssh_version("x") is None


@pytest.mark.parametrize("bad", ["abc", 0, 70000, True, "22x", -1])
def test_bad_port_is_a_site_error(bad: Any) -> None:
    with pytest.raises(ValueError, match="hive_sshd_port"):
        sshd_port(bad)


def test_port_unset_or_numeric() -> None:
    assert sshd_port(None) is None and sshd_port("") is None
    assert sshd_port("2222") == 2222 and sshd_port(22) == 22


def test_dropin_text_is_exact() -> None:
    text = dropin_text(wanted_settings(DEBIAN, users_managed=True, port=22))
    assert text == HEADER + ("PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n"
                             "LoginGraceTime 0\nPermitRootLogin no\nPort 22\n")
    assert DROPIN == "/etc/ssh/sshd_config.d/10-hive.conf"


def test_service_per_family() -> None:
    assert service_name(DEBIAN) == "ssh"
    assert service_name(EL9) == "sshd"


# -- Include -----------------------------------------------------------------------------------------------------


def test_include_detection() -> None:
    assert has_include(DEBIAN_MAIN)
    assert has_include("include sshd_config.d/*.conf\n")
    assert not has_include(EL8_MAIN)
    assert not has_include("#Include /etc/ssh/sshd_config.d/*.conf\n")


def test_include_goes_on_top_of_el8_main_file() -> None:
    new = with_include(EL8_MAIN)
    assert new.splitlines()[1] == INCLUDE_LINE == "Include /etc/ssh/sshd_config.d/*.conf"
    assert new.endswith(EL8_MAIN)
    assert with_include(DEBIAN_MAIN) == DEBIAN_MAIN


# -- lock-out pre-flight ------------------------------------------------------------------------------------------


def test_root_login_with_users_managed_is_refused() -> None:
    settings = wanted_settings(DEBIAN, users_managed=True, port=None)
    reasons = lockout_reasons(settings, "root", CONN, password_only=False)
    assert len(reasons) == 1 and "root" in reasons[0] and "PermitRootLogin no" in reasons[0]
    assert lockout_reasons(settings, "admin", CONN, password_only=False) == []
    assert lockout_reasons(wanted_settings(DEBIAN, False, None), "root", CONN, password_only=False) == []


def test_port_the_controller_does_not_land_on_is_refused() -> None:
    reasons = lockout_reasons(wanted_settings(DEBIAN, False, 2222), "admin", CONN, password_only=False)
    assert len(reasons) == 1 and "Port 2222" in reasons[0] and "port 22" in reasons[0]
    assert lockout_reasons(wanted_settings(DEBIAN, False, 22), "admin", CONN, password_only=False) == []
    unknown = lockout_reasons(wanted_settings(DEBIAN, False, 22), "admin", None, password_only=False)
    assert len(unknown) == 1 and "unknown" in unknown[0]


def test_password_only_login_is_refused() -> None:
    reasons = lockout_reasons(wanted_settings(EL9, False, None), "admin", CONN, password_only=True)
    assert len(reasons) == 1 and "password" in reasons[0]


# -- effective values --------------------------------------------------------------------------------------------


def test_connection_and_match_spec() -> None:
    assert parse_connection("10.81.0.1 40000 10.81.0.4 22") == CONN
    assert parse_connection("") is None and parse_connection("a b c") is None
    assert match_spec("admin", CONN) == "user=admin,host=10.81.0.1,addr=10.81.0.1,laddr=10.81.0.4,lport=22"
    assert match_spec("admin", None) == "user=admin"


def test_mismatches_name_the_value_sshd_uses() -> None:
    settings = wanted_settings(DEBIAN, users_managed=True, port=22)
    good = parse_effective("port 2200\nport 22\npasswordauthentication no\nkbdinteractiveauthentication no\n"
                           "usedns no\nlogingracetime 0\npermitrootlogin no\n")
    assert mismatches(settings, good) == []
    bad = dict(good, passwordauthentication=["yes"], port=["2200"])
    assert mismatches(settings, bad) == ["PasswordAuthentication: wanted no, sshd uses yes",
                                         "Port: wanted 22, sshd uses 2200"]
    assert mismatches(settings, {}) [0] == "PasswordAuthentication: wanted no, sshd uses (nothing)"


def test_setters_command_greps_every_file_but_ours() -> None:
    cmd = setters_command(wanted_settings(DEBIAN, False, None))
    assert cmd.startswith("grep -HniE '^[[:space:]]*(KbdInteractiveAuthentication|LoginGraceTime|"
                          "PasswordAuthentication|UseDNS)[[:space:]]' "
                          "/etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf")
    assert "grep -v '^/etc/ssh/sshd_config.d/10-hive.conf:'" in cmd


# -- probe ---------------------------------------------------------------------------------------------------------


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def probe_output(main: str | None = DEBIAN_MAIN, dropin: str | None = None, conn: str = "10.81.0.1 40000 10.81.0.4 22",
                 others: dict[str, str] | None = None,
                 eff: str = "passwordauthentication yes\nkbdinteractiveauthentication no\nusedns no\n"
                            "logingracetime 120\npermitrootlogin without-password\nport 22",
                 trc: int = 0, stat: str = "644 root root") -> str:
    lines = [f"mainstat={stat}", f"main={b64(main)}" if main is not None else "main=missing"]
    if dropin is not None:
        lines.append(f"dropin={b64(dropin)}")
    lines += [f"conf={path}\t{b64(text)}" for path, text in (others or {}).items()]
    lines += ["dir=yes", f"conn={conn}", f"trc={trc}", *(f"eff={e}" for e in eff.splitlines())]
    return "\n".join(lines) + "\n"


def test_parse_probe() -> None:
    state = parse_probe(probe_output(main=EL8_MAIN, stat="600 root root"))
    assert state.main == EL8_MAIN and state.main_stat == ("0600", "root", "root")
    assert state.dropin is None and state.dir_exists and state.conn == CONN and state.t_ok
    assert state.effective["logingracetime"] == ["120"]
    assert parse_probe("main=missing\nconn=\ntrc=255\nterr=line 3: Bad option\n").main is None


def test_probe_script_is_read_only_and_asks_sshd_for_our_own_login() -> None:
    script = probe_script(wanted_settings(DEBIAN, True, None), "admin")
    assert "spec=\"user=admin,host=$1,addr=$1,laddr=$3,lport=$4\"" in script
    assert "/usr/sbin/sshd -T -C \"$spec\"" in script
    assert "id -Gn admin" in script  # the user's groups, for AllowGroups/DenyGroups
    for verb in ("mv ", "rm ", "cp ", "tee ", " > /", "sed -i"):
        assert verb not in script
    assert [ln for ln in script.splitlines() if "systemctl" in ln and "systemctl is-active --quiet" not in ln] == []
    with pytest.raises(ValueError, match="user name"):
        probe_script([], "x;reboot")


def test_connection_walk_finds_ssh_connection_in_an_ancestor() -> None:
    """sudo drops SSH_CONNECTION; the walk must find it in the login shell that started sudo."""
    out = subprocess.run(["sh", "-c", 'env -u SSH_CONNECTION sh -c "$WALK"; true'],
                         env={"PATH": "/usr/bin:/bin", "WALK": _CONNECTION_WALK,
                              "SSH_CONNECTION": "10.81.0.1 40000 10.81.0.4 22"},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "conn=10.81.0.1 40000 10.81.0.4 22"


def test_probe_script_exits_zero_and_parses_here() -> None:
    """Run for real with sh (ctx.run fails the step on a non-zero exit): whatever this machine has, it parses."""
    script = probe_script(wanted_settings(DEBIAN, True, None), "root")
    done = subprocess.run(["sh", "-c", script], env={"PATH": "/usr/sbin:/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert parse_probe(done.stdout).groups[:1] == ("root",)


# -- plan, install, rollback ----------------------------------------------------------------------------------------


def test_plan_creates_the_dropin_on_debian() -> None:
    settings = wanted_settings(DEBIAN, False, None)
    plan = plan_changes(parse_probe(probe_output()), settings)
    assert plan.main_new is None and plan.dropin_new == dropin_text(settings)
    assert [c[0] for c in plan.changes] == [f"file[{DROPIN}]"]
    assert "+PasswordAuthentication no" in plan.changes[0][2]


def test_plan_adds_include_on_el8() -> None:
    settings = wanted_settings(EL8, False, None)
    plan = plan_changes(parse_probe(probe_output(main=EL8_MAIN)), settings)
    assert plan.main_new == with_include(EL8_MAIN)
    assert [c[0] for c in plan.changes] == ["line[/etc/ssh/sshd_config:Include]", f"file[{DROPIN}]"]
    assert f"+{INCLUDE_LINE}" in plan.changes[0][2]


def test_plan_is_empty_when_everything_is_in_place() -> None:
    settings = wanted_settings(DEBIAN, False, None)
    state = parse_probe(probe_output(dropin=dropin_text(settings)))
    assert plan_changes(state, settings).changes == ()
    with pytest.raises(ValueError, match="openssh-server"):
        plan_changes(HostState(None, ("0644", "root", "root"), None, True, None, True), settings)


def test_sshd_transaction_install_and_rollback_are_exact() -> None:
    """sshd as the config transaction's user: an EL8 host without the drop-in dir, then a replaced drop-in."""
    state = parse_probe(probe_output(main=EL8_MAIN).replace("dir=yes\n", ""))
    settings = wanted_settings(EL8, False, None)
    tx = sshd_task.transaction(sshd_host(EL8, ""), state, plan_changes(state, settings), settings,
                               "sshd", [])
    assert [(f.path, f.existed, f.make_dir, f.validate) for f in tx.files] == [
        (DROPIN, False, True, ("/usr/sbin/sshd", "-t", "-f", "%s")),
        ("/etc/ssh/sshd_config", True, False, ("/usr/sbin/sshd", "-t", "-f", "%s"))]
    plan = tx.plan("S", {DROPIN: "/etc/ssh/sshd_config.d/.c1", "/etc/ssh/sshd_config": "/etc/ssh/.c2"})
    assert plan.install().splitlines() == [
        "set -e",
        "mv -f /etc/ssh/sshd_config.d/.c1 /etc/ssh/sshd_config.d/10-hive.conf",
        "cp -p /etc/ssh/sshd_config '/etc/ssh/sshd_config.S.hive~'",
        "mv -f /etc/ssh/.c2 /etc/ssh/sshd_config",
    ]
    assert plan.rollback(reload=True).splitlines() == [
        "rm -f /etc/ssh/sshd_config.d/10-hive.conf",
        "if [ -f '/etc/ssh/sshd_config.S.hive~' ]; then mv -f '/etc/ssh/sshd_config.S.hive~' /etc/ssh/sshd_config; fi",
        "rmdir /etc/ssh/sshd_config.d 2>/dev/null || true",
        "/usr/sbin/sshd -t || exit $?",
        *reload_script("sshd", 22).splitlines(),
    ]
    state = parse_probe(probe_output(dropin="# old\n"))
    settings = wanted_settings(DEBIAN, False, None)
    tx = sshd_task.transaction(sshd_host(DEBIAN, ""), state, plan_changes(state, settings), settings,
                               "ssh", [])
    assert tx.plan("S", {DROPIN: "/etc/ssh/sshd_config.d/.c1"}).rollback(reload=False) == (
        "if [ -f '/etc/ssh/sshd_config.d/10-hive.conf.S.hive~' ]; "
        "then mv -f '/etc/ssh/sshd_config.d/10-hive.conf.S.hive~' /etc/ssh/sshd_config.d/10-hive.conf; fi")


# -- the task on a fake host -------------------------------------------------------------------------------------


def sshd_host(facts: Facts, probe: str, vars: dict[str, Any] | None = None, user: str = "admin",
              check: bool = True, session: FakeSession | None = None, eff: str | None = None) -> FakeHost:
    """The sshd task's host: `probe` answers the state probe, `eff` (when given) answers `sshd -T -C`."""
    def answer(command: str) -> str:
        if "SSH_CONNECTION" in command:
            return probe
        return eff if eff is not None and " -T -C " in command else ""

    session = session or FakeSession(user=user)
    session.answer = answer
    return FakeHost(facts=facts, host_vars=vars, check=check, session=session)


def changes(ctx: FakeHost) -> list[tuple[str, str]]:
    """(ident, summary) of every change the task recorded."""
    return [(c.ident, c.summary) for c in ctx.outcome.changes]


@pytest.mark.parametrize(("facts", "service"), [(DEBIAN, "ssh"), (EL9, "sshd")])
def test_check_mode_predicts_and_runs_only_the_probe(facts: Facts, service: str) -> None:
    ctx = sshd_host(facts, probe_output(), vars={"hive_users": {"alice": {}}})
    sshd(ctx)
    assert len(ctx.result.ran) == 1
    assert [c[0] for c in changes(ctx)] == [f"file[{DROPIN}]", f"service[{service}]"]
    assert "reload" in changes(ctx)[1][1] and "restart" in changes(ctx)[1][1]


def test_el8_check_mode_predicts_the_include_line() -> None:
    ctx = sshd_host(EL8, probe_output(main=EL8_MAIN, stat="600 root root"))
    sshd(ctx)
    assert [c[0] for c in changes(ctx)] == ["line[/etc/ssh/sshd_config:Include]", f"file[{DROPIN}]", "service[sshd]"]


def test_root_login_is_refused_before_anything_changes() -> None:
    ctx = sshd_host(DEBIAN, probe_output(), vars={"hive_users": {"alice": {}}}, user="root", check=False)
    with pytest.raises(StepFailed, match=r"refused, nothing changed.*root"):
        sshd(ctx)
    assert len(ctx.result.ran) == 1 and changes(ctx) == []


def test_port_change_is_refused_before_anything_changes() -> None:
    ctx = sshd_host(DEBIAN, probe_output(), vars={"hive_sshd_port": 2222}, check=False)
    with pytest.raises(StepFailed, match="Port 2222 wanted, but the controller reaches sshd on port 22"):
        sshd(ctx)
    assert len(ctx.result.ran) == 1


def test_in_place_and_effective_is_zero_changes() -> None:
    settings = wanted_settings(DEBIAN, False, None)
    eff = "passwordauthentication no\nkbdinteractiveauthentication no\nusedns no\nlogingracetime 0"
    ctx = sshd_host(DEBIAN, probe_output(dropin=dropin_text(settings), eff=eff), check=False)
    sshd(ctx)
    assert changes(ctx) == [] and len(ctx.result.ran) == 1


def test_in_place_but_overridden_fails_and_says_first_value_wins() -> None:
    settings = wanted_settings(DEBIAN, False, None)
    eff = "passwordauthentication yes\nkbdinteractiveauthentication no\nusedns no\nlogingracetime 0"
    ctx = sshd_host(DEBIAN, probe_output(dropin=dropin_text(settings), eff=eff), check=False)
    with pytest.raises(StepFailed, match=r"PasswordAuthentication: wanted no, sshd uses yes.*FIRST value"):
        sshd(ctx)


# -- check mode's prediction of first-value-wins overrides ----------------------------------------------------------

LOCAL = "/etc/ssh/sshd_config.d/00-local.conf"
CLOUD = "/etc/ssh/sshd_config.d/50-cloud-init.conf"


def overrides(main: str, others: dict[str, str], facts: Facts = DEBIAN) -> list[str]:
    state = parse_probe(probe_output(main=main, others=others))
    assert state.others == others
    return predicted_overrides(state, wanted_settings(facts, users_managed=True, port=None))


def test_an_earlier_dropin_wins() -> None:
    assert overrides(DEBIAN_MAIN, {LOCAL: "PasswordAuthentication yes\n"}) == [
        f"{LOCAL}:1: PasswordAuthentication yes comes first (wanted no)"]


def test_a_later_dropin_loses_and_an_equal_value_is_fine() -> None:
    assert overrides(DEBIAN_MAIN, {CLOUD: "PasswordAuthentication yes\n"}) == []
    assert overrides(DEBIAN_MAIN, {LOCAL: "passwordauthentication No\nUseDNS=no\n"}) == []


def test_main_file_lines_before_the_include_win() -> None:
    main = "PermitRootLogin yes\n" + DEBIAN_MAIN
    assert overrides(main, {}) == ["/etc/ssh/sshd_config:1: PermitRootLogin yes comes first (wanted no)"]


def test_el8_main_file_loses_once_the_include_goes_on_top() -> None:
    assert overrides(EL8_MAIN, {}, EL8) == []


def test_match_blocks_are_not_global() -> None:
    assert overrides(DEBIAN_MAIN, {LOCAL: "Match User deploy\n  PasswordAuthentication yes\n"}) == []
    first = first_values(DEBIAN_MAIN + "Match Address 10.0.0.0/8\n  UseDNS yes\n", {})
    assert "usedns" not in first and first["kbdinteractiveauthentication"] == ("no", "/etc/ssh/sshd_config:3")


def test_check_mode_fails_when_a_real_run_would_roll_back() -> None:
    ctx = sshd_host(DEBIAN, probe_output(others={LOCAL: "PasswordAuthentication yes\n"}))
    with pytest.raises(StepFailed, match=r"would roll it back.*00-local\.conf:1: PasswordAuthentication yes"):
        sshd(ctx)
    assert changes(ctx) == []


def test_check_mode_fails_when_sshd_already_rejects_the_config() -> None:
    out = probe_output(trc=255) + "terr=/etc/ssh/sshd_config.d/20-bad.conf line 1: unsupported option \"maybe\".\n"
    with pytest.raises(StepFailed, match=r"a real run would roll back: /etc/ssh/sshd_config\.d/20-bad\.conf line 1"):
        sshd(sshd_host(DEBIAN, out))


# -- the guarded apply, offline: exact command sequence for both families -----------------------------------------

GOOD_EFF = ("passwordauthentication no\nkbdinteractiveauthentication no\nchallengeresponseauthentication no\n"
            "usedns no\nlogingracetime 0\npermitrootlogin no\nport 22\n")


def apply_host(facts: Facts, probe: str, session: FakeSession, eff: str = GOOD_EFF) -> FakeHost:
    """The sshd task's host in apply mode: the session stages files and `eff` answers sshd -T."""
    return sshd_host(facts, probe, vars={"hive_users": {"alice": {}}}, check=False, session=session, eff=eff)


def stamp_free(commands: list[str]) -> list[str]:
    return [re.sub(r"\d{14}", "STAMP", c) for c in commands]


@pytest.mark.parametrize(("facts", "service"), [(DEBIAN, "ssh"), (EL9, "sshd")])
def test_apply_sequence(facts: Facts, service: str) -> None:
    session = FakeSession()
    ctx = apply_host(canned(facts.os_family, init="systemd", openssh=facts.openssh), probe_output(), session)
    sshd(ctx)
    unit = "hive-sshd-rollback-STAMP"
    assert stamp_free(ctx.result.ran[1:]) == [
        "/usr/sbin/sshd -t -f /etc/ssh/sshd_config.d/.cand-10-hive.conf",
        f"systemd-run --quiet --unit={unit} --on-active=120 /bin/sh /run/{unit}.sh",
        "set -e\nmv -f /etc/ssh/sshd_config.d/.cand-10-hive.conf /etc/ssh/sshd_config.d/10-hive.conf",
        "/usr/sbin/sshd -t",
        "/usr/sbin/sshd -T -C user=admin,host=10.81.0.1,addr=10.81.0.1,laddr=10.81.0.4,lport=22",
        reload_script(service, 22),
        f"systemctl stop {unit}.timer 2>/dev/null; rm -f /run/{unit}.sh",
    ]
    deadman = session.staged[1]
    assert stamp_free([deadman[0]]) == [f"/run/{unit}.sh"] and deadman[1] == "0700"
    assert stamp_free([deadman[2]]) == [
        f"rm -f /run/{unit}.sh\n"
        f"rm -f /etc/ssh/sshd_config.d/10-hive.conf\n/usr/sbin/sshd -t || exit $?\n{reload_script(service, 22)}\n"]
    assert [c[0] for c in changes(ctx)] == [f"file[{DROPIN}]", f"service[{service}]"]


def test_el8_apply_makes_the_directory_and_keeps_the_main_file_mode() -> None:
    session = FakeSession()
    probe = probe_output(main=EL8_MAIN, stat="600 root root").replace("dir=yes\n", "")
    ctx = apply_host(canned("redhat", os_version="8.10", openssh="8.0p1", init="systemd"), probe, session)
    sshd(ctx)
    assert ctx.result.ran[1] == "mkdir -p -m 0755 /etc/ssh/sshd_config.d"
    assert session.staged[0][:2] == (DROPIN, "0644")
    assert session.staged[1][:2] == ("/etc/ssh/sshd_config", "0600")
    assert session.staged[1][2].startswith("# added by hive_nornir: drop-ins must be read first\n" + INCLUDE_LINE)
    assert "/usr/sbin/sshd -t -f /etc/ssh/.cand-sshd_config" in ctx.result.ran
    install = next(c for c in ctx.result.ran if c.startswith("set -e"))
    assert stamp_free([install])[0].splitlines() == [
        "set -e", "mv -f /etc/ssh/sshd_config.d/.cand-10-hive.conf /etc/ssh/sshd_config.d/10-hive.conf",
        "cp -p /etc/ssh/sshd_config '/etc/ssh/sshd_config.STAMP.hive~'",
        "mv -f /etc/ssh/.cand-sshd_config /etc/ssh/sshd_config"]


def test_refused_fresh_login_rolls_back_and_reloads() -> None:
    session = FakeSession(login_ok=False)
    ctx = apply_host(canned("debian", init="systemd"), probe_output(), session)
    with pytest.raises(StepFailed, match=r"fresh SSH login failed.*rolled back, but a fresh login still fails"):
        sshd(ctx)
    after_reload = ctx.result.ran[ctx.result.ran.index(reload_script("ssh", 22)) + 1:]
    assert after_reload[0] == ("rm -f /etc/ssh/sshd_config.d/10-hive.conf\n/usr/sbin/sshd -t || exit $?\n"
                               + reload_script("ssh", 22))
    assert after_reload[1].startswith("systemctl stop hive-sshd-rollback-")
    assert changes(ctx) == []


def test_overridden_dropin_rolls_back_without_reloading() -> None:
    eff = GOOD_EFF.replace("passwordauthentication no", "passwordauthentication yes")
    ctx = apply_host(canned("debian", init="systemd"), probe_output(), FakeSession(), eff=eff)
    with pytest.raises(StepFailed, match=r"PasswordAuthentication: wanted no, sshd uses yes.*rolled back"):
        sshd(ctx)
    assert reload_script("ssh", 22) not in ctx.result.ran
    assert "rm -f /etc/ssh/sshd_config.d/10-hive.conf" in ctx.result.ran


# -- the reload waits for sshd's re-exec, run for real against stub ss/systemctl ----------------------------------

STUBS = {
    # listener inode: 100 before the reload; after it, "old" for `flips` more calls, then 200 (the re-exec'd sshd)
    "ss": 'n=$(cat "$D/calls" 2>/dev/null || echo 0); echo $((n+1)) > "$D/calls"\n'
          'if [ -f "$D/reloaded" ] && [ "$n" -gt "$FLIPS" ]; then i=200; else i=100; fi\n'
          'echo "LISTEN 0 128 0.0.0.0:22 0.0.0.0:* ino:$i sk:1"\n',
    "systemctl": 'case "$1" in reload) touch "$D/reloaded"; exit "${RELOAD_RC:-0}";; is-active) exit 3;; esac\n',
    "sleep": "exit 0\n",
}


def run_reload(tmp_path: Any, flips: int, reload_rc: int = 0, polls: int = 100) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in STUBS.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "D": str(tmp_path), "FLIPS": str(flips), "RELOAD_RC": str(reload_rc)}
    return subprocess.run(["sh", "-c", reload_script("ssh", 22, polls)], env=env, capture_output=True, text=True)


def test_reload_returns_only_once_sshd_listens_on_new_sockets(tmp_path: Any) -> None:
    r = run_reload(tmp_path, flips=5)
    assert r.returncode == 0, r.stderr
    assert int((tmp_path / "calls").read_text()) == 7  # before + 5 polls still seeing the old socket + the new one


def test_reload_fails_when_the_old_listener_never_goes(tmp_path: Any) -> None:
    r = run_reload(tmp_path, flips=10_000, polls=20)
    assert r.returncode == 3 and "still listens on its old sockets on port 22" in r.stderr


def test_a_refused_reload_is_reported(tmp_path: Any) -> None:
    assert run_reload(tmp_path, flips=0, reload_rc=1).returncode == 1


# -- our own login against the WHOLE effective config (issue 10 #7) ---------------------------------------------

ADMIN = Login(user="admin", groups=("admin", "sudo"), client_addr="10.81.0.1", server_addr="10.81.0.4",
              server_port=22)


def eff_of(text: str) -> dict[str, list[str]]:
    return parse_effective(text)


@pytest.mark.parametrize(("effective", "refused"), [
    ("port 22\nlistenaddress [::]:22\nlistenaddress 0.0.0.0:22", []),
    ("port 2200\nlistenaddress [::]:2200\nlistenaddress 0.0.0.0:2200", ["port"]),
    ("port 2200\nport 22\nlistenaddress 0.0.0.0:2200\nlistenaddress 0.0.0.0:22", []),
    ("port 22\nlistenaddress 10.81.0.9:22", ["port"]),
    ("port 22\nlistenaddress 10.81.0.4:22", []),
    ("port 22\nlistenaddress [::]:22", ["port"]),  # sshd sets IPV6_V6ONLY: [::] does not take IPv4
    ("port 22", []),
    ("allowusers nobody", ["allowusers"]),
    ("allowusers nobody\nallowusers adm?n", []),
    ("allowusers admin@10.0.0.0/8", []),
    ("allowusers admin@192.168.0.0/16", ["allowusers"]),
    ("allowusers admin@!10.81.0.1,10.0.0.0/8", ["allowusers"]),
    ("denyusers a*", ["denyusers"]),
    ("denyusers admin@192.168.0.1", []),
    ("allowgroups wheel", ["allowgroups"]),
    ("allowgroups wheel\nallowgroups sud*", []),
    ("denygroups sudo", ["denygroups"]),
    ("pubkeyauthentication no", ["pubkeyauthentication"]),
    ("authenticationmethods publickey,password", ["authenticationmethods"]),
    ("authenticationmethods publickey,password publickey", []),
    ("permitrootlogin no", []),  # we are not root
])
def test_refusals_for_our_own_login(effective: str, refused: list[str]) -> None:
    assert [key for key, _ in refusals(eff_of(effective), ADMIN)] == refused


def test_root_and_password_logins() -> None:
    root = Login(user="root", server_port=22, server_addr="10.81.0.4")
    assert [k for k, _ in refusals(eff_of("permitrootlogin no"), root)] == ["permitrootlogin"]
    assert refusals(eff_of("permitrootlogin prohibit-password"), root) == []
    by_password = Login(user="root", key=False, password=True)
    assert [k for k, _ in refusals(eff_of("permitrootlogin prohibit-password"), by_password)] == ["permitrootlogin"]
    assert [k for k, _ in refusals(eff_of("passwordauthentication no"), Login("a", key=False, password=True))] == [
        "passwordauthentication"]
    # socket activation: systemd owns the listener, Port/ListenAddress do not decide
    assert refusals(eff_of("port 2200\nlistenaddress 0.0.0.0:2200"), ADMIN, socket_activated=True) == []


def test_the_line_to_blame_is_found_in_include_order() -> None:
    main = "Port 22\nInclude /etc/ssh/sshd_config.d/*.conf\nMatch User admin\n  AllowUsers admin\n"
    order = read_order(main, {LOCAL: "AllowUsers nobody\n", CLOUD: "# x\nAllowUsers root\n"})
    assert setter_lines(order, {"allowusers"}) == [
        f"{LOCAL}:1: AllowUsers nobody", f"{CLOUD}:2: AllowUsers root",
        "/etc/ssh/sshd_config:4: AllowUsers admin (inside `Match User admin`)"]
    assert setter_lines(order, {"port", "listenaddress"}) == ["/etc/ssh/sshd_config:1: Port 22"]


def pending_probe(local: str, eff: str) -> str:
    """The probe on a Debian host where someone left an edit in 00-local.conf that sshd has not loaded yet."""
    return probe_output(others={LOCAL: local}, eff=eff) + "groups=admin sudo\n"


@pytest.mark.parametrize(("local", "eff", "blamed"), [
    ("Port 2200\n", "port 2200\nlistenaddress 0.0.0.0:2200", "sshd would listen on 0.0.0.0:2200, not on "
     "10.81.0.4:22 where our login arrives (set by /etc/ssh/sshd_config.d/00-local.conf:1: Port 2200)"),
    ("AllowUsers nobody\n", "port 22\nallowusers nobody", "AllowUsers nobody does not match admin from 10.81.0.1 "
     "to 10.81.0.4:22 (set by /etc/ssh/sshd_config.d/00-local.conf:1: AllowUsers nobody)"),
])
@pytest.mark.parametrize("check", [True, False])
def test_someone_elses_pending_lockout_is_refused_before_anything(local: str, eff: str, blamed: str,
                                                                  check: bool) -> None:
    ctx = sshd_host(DEBIAN, pending_probe(local, eff), check=check)
    with pytest.raises(StepFailed) as err:
        sshd(ctx)
    assert str(err.value) == ("sshd hardening refused, nothing changed, sshd not reloaded: a reload would load "
                              "files that do not admit our own login (admin from 10.81.0.1 to 10.81.0.4:22): " +
                              blamed)
    assert len(ctx.result.ran) == 1 and changes(ctx) == []  # the probe only


def test_a_pending_lockout_fails_the_no_change_run_too() -> None:
    settings = wanted_settings(DEBIAN, False, None)
    eff = "passwordauthentication no\nkbdinteractiveauthentication no\nusedns no\nlogingracetime 0\nport 22\n" \
          "allowusers nobody"
    ctx = sshd_host(DEBIAN, probe_output(dropin=dropin_text(settings), eff=eff, others={LOCAL: "AllowUsers nobody\n"}),
                  check=False)
    with pytest.raises(StepFailed, match=r"would not admit our own login .* at its next reload .*00-local\.conf:1"):
        sshd(ctx)
    assert len(ctx.result.ran) == 1


def test_our_own_port_line_is_left_to_the_check_after_install() -> None:
    """hive_sshd_port 22 with someone's Port 2200: our drop-in adds the listener we arrive on (Port accumulates)."""
    ctx = sshd_host(DEBIAN, pending_probe("Port 2200\n", "port 2200\nlistenaddress 0.0.0.0:2200"),
                  vars={"hive_sshd_port": 22})
    sshd(ctx)
    assert [c[0] for c in changes(ctx)] == [f"file[{DROPIN}]", "service[ssh]"]


def test_the_whole_config_after_install_must_admit_us_or_it_is_rolled_back_unreloaded() -> None:
    ctx = apply_host(canned("debian", init="systemd"), probe_output(), FakeSession(), eff=GOOD_EFF + "allowusers x\n")
    with pytest.raises(StepFailed, match=r"would not admit our own login .* so sshd was not reloaded: AllowUsers x"):
        sshd(ctx)
    assert reload_script("ssh", 22) not in ctx.result.ran
    assert "rm -f /etc/ssh/sshd_config.d/10-hive.conf" in ctx.result.ran
