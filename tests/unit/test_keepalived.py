"""keepalived: the exact keepalived.conf from site data, refusals before any change, and the task's plan on both
families through the config transaction (validate the candidate, install, whole config, reload/start, prove).

The real VRRP, reload and failover are proven in tests/lab/test_keepalived_lab.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from fake_host import FakeHost, FakeSession, result, stage_host
from plan_cases import assert_text

from hive_nornir.engine.errors import StepFailed
from hive_nornir.facts import canned
from hive_nornir.site.rules import VAR_KINDS
from hive_nornir.tasks.cluster import keepalived as ka_mod
from hive_nornir.tasks.cluster import vip as vip_mod
from hive_nornir.tasks.cluster.keepalived import keepalived
from hive_nornir.tasks.cluster.keepalived_conf import KeepalivedError, masked, parse, render
from hive_nornir.tasks.cluster.vip import keepalived_vip
from hive_nornir.tasks.cluster.vrrp_state import ADDR_SCRIPT, STATE_SCRIPT, parse_states
from hive_nornir.transport import CommandResult

H0, H1, H2 = "p-hive0.pdns", "p-hive1.pdns", "p-hive2.pdns"
STAGE = {H0: stage_host(H0, "servers", "hives", ip="192.168.0.4"),
         H1: stage_host(H1, "servers", "hives", ip="192.168.0.5"),
         H2: stage_host(H2, "servers", "hives", ip="192.168.0.6")}
SPEC: dict[str, Any] = {
    "script_user": "keepalived_script",
    "scripts": {"chk_haproxy": {"script": "/usr/bin/pgrep -x haproxy", "weight": -20}},
    "instances": {"VI_HIVE": {
        "interface": "eth0", "virtual_router_id": 51, "virtual_ipaddress": ["192.168.0.100/24"],
        "hosts": [H0, H1], "auth_pass": "s3cret", "track_interface": ["eth1"], "track_script": ["chk_haproxy"],
        "notify_master": "/usr/local/sbin/vip-master --vip 192.168.0.100",
        "notify_backup": "/usr/local/sbin/vip-backup", "options": {"garp_master_delay": 1}}},
}
WANT_H1 = """\
# managed by hive_nornir (tasks/cluster/keepalived): every change here is overwritten
global_defs {
    router_id p-hive1
    enable_script_security
    script_user keepalived_script
}

vrrp_script chk_haproxy {
    script "/usr/bin/pgrep -x haproxy"
    interval 2
    fall 2
    rise 2
    weight -20
}

vrrp_instance VI_HIVE {
    state BACKUP
    nopreempt
    interface eth0
    virtual_router_id 51
    priority 140
    advert_int 1
    unicast_src_ip 192.168.0.5
    unicast_peer {
        192.168.0.4
    }
    authentication {
        auth_type PASS
        auth_pass s3cret
    }
    virtual_ipaddress {
        192.168.0.100/24 dev eth0
    }
    track_interface {
        eth1
    }
    track_script {
        chk_haproxy
    }
    notify_master "/usr/local/sbin/vip-master --vip 192.168.0.100"
    notify_backup "/usr/local/sbin/vip-backup"
    garp_master_delay 1
}
"""


def test_render_is_exact_for_the_second_member() -> None:
    assert_text(WANT_H1, render(parse(SPEC, STAGE), H1, STAGE))


def test_first_member_has_the_top_priority_and_the_other_as_peer() -> None:
    text = render(parse(SPEC, STAGE), H0, STAGE)
    assert "    priority 150\n" in text
    assert "unicast_src_ip 192.168.0.4\n    unicast_peer {\n        192.168.0.5\n" in text


def test_members_default_to_every_host_with_the_instance() -> None:
    spec = {"instances": {"VI": {"interface": "eth0", "virtual_router_id": 9, "virtual_ipaddress": ["10.0.0.9/8"]}}}
    stage = {n: stage_host(n, "hives", ip=f"10.0.0.{i + 1}", hive_keepalived=spec) for i, n in enumerate((H2, H0))}
    stage[H1] = stage_host(H1, "hives", ip="10.0.0.7")  # no hive_keepalived: not a member
    conf = parse(spec, stage)
    assert conf.instances[0].hosts == (H0, H2)
    text = render(conf, H2, stage)
    assert "priority 140" in text and "unicast_peer {\n        10.0.0.2\n    }" in text, text
    assert "vrrp_script" not in text  # only tracked scripts are written


def test_masked_hides_the_password() -> None:
    assert "auth_pass (hidden)" in masked(WANT_H1) and "s3cret" not in masked(WANT_H1)


@pytest.mark.parametrize(("change", "message"), [
    ({"virtual_router_id": 0}, "virtual_router_id: 0 is not an integer from 1 to 255"),
    ({"track_interface": ["eth0"]}, "track_interface: eth0 is the instance's own interface"),
    ({"track_script": ["nope"]}, "track_script: nope not defined under scripts"),
    ({"hosts": [H0]}, "a VIP needs at least 2 hosts"),
    ({"hosts": [H0, "p-hive9.pdns"]}, "p-hive9.pdns not a host of the stage"),
    ({"notify_master": '/bin/x"; rm -rf /'}, "notify_master: '/bin/x\"; rm -rf /' is not an absolute command"),
    ({"virtual_ipaddress": ["300.1.1.1/24"]}, "is not an address like 10.0.0.100/24"),
    ({"auth_pass": "much-too-long"}, "auth_pass: 1 to 8 printable characters"),
    ({"options": {"x": "a b"}}, "options.x: a keyword and one plain value"),
])
def test_bad_instances_are_refused_naming_the_key(change: dict[str, Any], message: str) -> None:
    spec = {**SPEC, "instances": {"VI_HIVE": {**SPEC["instances"]["VI_HIVE"], **change}}}
    with pytest.raises(KeepalivedError, match=None) as err:
        parse(spec, STAGE)
    assert message in str(err.value), str(err.value)


def test_the_site_check_names_the_key() -> None:
    problems = VAR_KINDS["hive_keepalived"].check({"instances": {"VI": {
        "interface": "eth0", "virtual_router_id": 300, "virtual_ipaddress": ["10.0.0.1/24"], "notify": "x"}}})
    assert [(p[0], p[1]) for p in problems] == [(("instances", "VI", "virtual_router_id"), "is out of range"),
                                                (("instances", "VI", "notify"), "has an invalid format")]


# -- the task on the fake host ---------------------------------------------------------------------------------
def host_probe(conf: str | None, active: bool, addr: str = "192.168.0.5") -> str:
    """What the task's probe prints: the file, the unit, eth0 with its address (eth1 exists too)."""
    import base64

    lines = ["exists=no", "parent=yes"] if conf is None else [
        "exists=yes", f"stat=640 root root {len(conf)}", f"content={base64.b64encode(conf.encode()).decode()}"]
    return "\n".join([*lines, f"active={'active' if active else 'inactive'}", "link=lo", "link=eth0", "link=eth1",
                      "addr=lo 127.0.0.1", f"addr=eth0 {addr}"]) + "\n"


def answers(conf: str | None, active: bool, *, vet: CommandResult | None = None, addr: str = "192.168.0.5",
            state: str = "BACKUP") -> Any:
    """The fake host: the probe, the candidate check, the state dump; everything else succeeds."""
    def answer(command: str) -> str | CommandResult:
        if command.startswith("if [ -f /etc/keepalived/keepalived.conf ]"):
            return host_probe(conf, active, addr)
        if "--use-file=" in command and vet is not None:
            return vet
        if command == STATE_SCRIPT:
            return f"running=yes\ninstance=VI_HIVE\nstate={state}\n"
        return ""
    return answer


def fake(answer: Any, family: str = "debian", check: bool = False) -> FakeHost:
    return FakeHost(H1, canned(family), host_vars={"hive_keepalived": SPEC}, stage_hosts=STAGE,
                    session=FakeSession(answer, user="root"), check=check)


@pytest.mark.parametrize(("family", "install"), [("debian", "apt-get"), ("redhat", "dnf install -y keepalived")])
def test_check_mode_predicts_package_file_and_start_on_both_families(family: str, install: str) -> None:
    ctx = fake(answers(None, False), family, check=True)
    keepalived(ctx)
    assert any(install in c for c in ctx.result.commands), ctx.result.commands
    assert ctx.result.changes == [
        "file[/etc/keepalived/keepalived.conf]: create /etc/keepalived/keepalived.conf: VI_HIVE (validated with "
        "keepalived -t)", "service[keepalived]: start keepalived"]
    assert not any("--use-file" in c or "mv -f" in c for c in ctx.session.ran)  # nothing staged or installed
    diff = ctx.outcome.changes[1].diff
    assert "auth_pass (hidden)" in diff and "s3cret" not in diff, diff


def test_apply_goes_through_the_transaction_in_order() -> None:
    ctx = fake(answers("old\n", True))
    keepalived(ctx)
    ran = ctx.session.ran
    cand = "/etc/keepalived/.cand-keepalived.conf"
    order = [f"keepalived --config-test --use-file={cand}", f"mv -f {cand} /etc/keepalived/keepalived.conf",
             "keepalived --config-test", "systemctl reload-or-restart keepalived", STATE_SCRIPT]
    idx = [next(i for i, c in enumerate(ran) if c == o or c.endswith("\n" + o)) for o in order]
    assert idx == sorted(idx), ran
    assert ctx.session.staged[0][:2] == ("/etc/keepalived/keepalived.conf", "0640")
    assert ctx.session.staged[0][2] == WANT_H1
    assert "service[keepalived]: reloaded keepalived; no instance in FAULT" in ctx.result.changes


def test_a_rejected_candidate_changes_nothing() -> None:
    vet = result(status=5, stderr="(/etc/keepalived/.cand: Line 16) Unknown keyword 'advert_intt'")
    ctx = fake(answers("old\n", True, vet=vet))
    with pytest.raises(StepFailed, match=r"keepalived rejects the candidate keepalived.conf \(nothing changed\): "
                                         r".*Unknown keyword 'advert_intt'"):
        keepalived(ctx)
    assert not any(c.startswith(("set -e", "systemctl")) for c in ctx.session.ran), ctx.session.ran
    assert ctx.session.ran[-1] == "rm -f /etc/keepalived/.cand-keepalived.conf"


def test_fault_after_the_reload_rolls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ka_mod, "PROVE_SECONDS", 0.0)
    ctx = fake(answers("old\n", True, state="FAULT"))
    with pytest.raises(StepFailed, match="VI_HIVE is FAULT; rolled back"):
        keepalived(ctx)
    assert any(c.startswith("if [ -f '/etc/keepalived/keepalived.conf.") for c in ctx.session.ran), ctx.session.ran


def test_source_address_missing_is_refused_before_any_change() -> None:
    ctx = fake(answers(None, False, addr="10.9.9.9"))
    with pytest.raises(StepFailed, match=r"unicast_src_ip 192.168.0.5 \(hive_private_ip\) is not an address of "
                                         r"eth0 on p-hive1.pdns \(10.9.9.9\)"):
        keepalived(ctx)
    assert not ctx.session.staged


def test_no_change_when_the_file_is_right() -> None:
    ctx = fake(answers(WANT_H1, True))
    keepalived(ctx)
    assert ctx.result.changes == [] and not ctx.session.staged


def test_parse_states_takes_the_first_state_after_each_instance() -> None:
    out = "running=yes\ninstance=VI_1\nstate=MASTER\nstate=idle\ninstance=VI_2\nstate=BACKUP\nstate=UP, RUNNING\n"
    assert parse_states(out) == {"VI_1": "MASTER", "VI_2": "BACKUP"}
    assert parse_states("running=no\n") == {}


# -- the gate -----------------------------------------------------------------------------------------------------
def member(holds: bool, state: str) -> FakeSession:
    """A member's session: its addresses and its VRRP state."""
    def answer(command: str) -> str:
        if command == ADDR_SCRIPT:
            return "eth0 192.168.0.9\n" + ("eth0 192.168.0.100\n" if holds else "")
        if command == STATE_SCRIPT:
            return f"running=yes\ninstance=VI_HIVE\nstate={state}\n"
        return ""
    return FakeSession(answer, user="root")


def gate_host(own: FakeSession, peer: FakeSession) -> FakeHost:
    return FakeHost(H0, canned(), host_vars={"hive_keepalived": SPEC}, stage_hosts=STAGE, session=own,
                    peers={H1: peer})


def test_gate_names_the_single_master() -> None:
    ctx = gate_host(member(False, "BACKUP"), member(True, "MASTER"))
    keepalived_vip(ctx)
    assert ctx.outcome.data["vip"] == {"VI_HIVE": {"vip": ["192.168.0.100/24"], "master": H1,
                                                   "states": {H0: "BACKUP", H1: "MASTER"}}}


def test_gate_fails_on_two_holders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vip_mod, "gate_seconds", lambda i: 0.0)
    ctx = gate_host(member(True, "MASTER"), member(True, "MASTER"))
    with pytest.raises(StepFailed, match=r"VIP 192.168.0.100/24 is on 2 hosts \(p-hive0.pdns, p-hive1.pdns\)"):
        keepalived_vip(ctx)


def test_gate_runs_only_on_the_first_member() -> None:
    ctx = FakeHost(H1, canned(), host_vars={"hive_keepalived": SPEC}, stage_hosts=STAGE)
    keepalived_vip(ctx)
    assert ctx.session.ran == [] and "vip" not in ctx.outcome.data
