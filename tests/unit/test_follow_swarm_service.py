"""follow-swarm-service: the install planned offline for both families, and the daemon's pure logic."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from fake_host import plan_task
from payload_loader import load_payload

from hive_nornir.engine.errors import StepFailed
from hive_nornir.facts import canned
from hive_nornir.runbooks.setup_hosts import RUNBOOK
from hive_nornir.tasks.docker.follow_swarm_service import DAEMON, UNIT, daemon_source, follow_swarm_service

d = load_payload("follow_swarm_daemon")

PASSWD = "admin:x:1000:1000::/home/admin:/bin/bash\n"


def getent(cmd: str) -> str:
    return PASSWD if cmd == "getent passwd admin" else ""


# -- the install, both families ----------------------------------------------------------------------------------

def test_debian_installs_arping_the_daemon_and_a_unit_in_the_admins_venv() -> None:
    plan = plan_task(follow_swarm_service, canned("debian"), run=getent)
    assert any(c.endswith(" iproute2 iputils-arping iputils-ping python3-docker") and "apt-get install" in c
               for c in plan.commands)
    assert plan.files[DAEMON] == daemon_source()
    unit = plan.files[UNIT]
    for line in ("ExecStart=/home/admin/docker/bin/python /usr/lib/follow-swarm-service.py", "Restart=always",
                 "RestartSec=15s", "KillMode=mixed", "After=docker.service", "Wants=docker.service",
                 "WantedBy=multi-user.target"):
        assert line + "\n" in unit
    assert plan.commands[-1] == "systemctl daemon-reload"  # before the service is enabled and started
    assert not any("pip install" in c or "semanage" in c for c in plan.commands)
    assert plan.notified.count("restart:follow-swarm-service") == 2


def test_el_uses_iputils_pips_the_sdk_and_labels_the_venv_python_for_selinux() -> None:
    plan = plan_task(follow_swarm_service, canned("redhat"), run=getent)
    assert "dnf install -y iproute iputils" in plan.commands
    assert "/home/admin/docker/bin/pip install -q docker" in plan.commands
    assert ("semanage fcontext -a -t bin_t '/home/admin/docker/bin/python.*' && "
            "restorecon -R /home/admin/docker/bin") in plan.commands
    assert "ExecStart=/home/admin/docker/bin/python /usr/lib/follow-swarm-service.py\n" in plan.files[UNIT]


def test_el_without_selinux_skips_the_file_context() -> None:
    plan = plan_task(follow_swarm_service, canned("redhat", selinux="Disabled"), run=getent)
    assert not any("semanage" in c for c in plan.commands)


def test_an_installed_daemon_changes_nothing() -> None:
    """Files as installed and guards satisfied: the step plans no change (the lab proves services too)."""
    first = plan_task(follow_swarm_service, canned("debian"), run=getent)
    again = plan_task(follow_swarm_service, canned("debian"), run=getent, files=first.files,
                      guard=lambda _c: False)
    assert [i for i in again.idents if i.startswith(("file[", "command["))] == []


def test_missing_admin_is_a_clear_failure() -> None:
    with pytest.raises(StepFailed, match="hive_admin 'ops' does not exist"):
        plan_task(follow_swarm_service, canned("debian"), run=lambda _c: "", host_vars={"hive_admin": "ops"})


def test_the_step_runs_on_hives_after_docker_client_as_in_hive_builders_play_four() -> None:
    names = [s.name for s in RUNBOOK.steps]
    step = RUNBOOK.steps[names.index("follow-swarm-service")]
    assert names.index("docker-client") < names.index("follow-swarm-service") < names.index("swarm-init")
    assert step.groups == ("hives",)
    assert {"follow-swarm-service", "setup-hosts"} <= set(step.tags)


def test_the_shipped_daemon_parses_as_python_3_7() -> None:
    ast.parse(daemon_source(), feature_version=(3, 7))


# -- the daemon: labels -> wanted ---------------------------------------------------------------------------------

def test_labels_give_vips_routers_and_the_mark() -> None:
    vips, marks, problems = d.wanted_from_labels({
        "HIVE_VIP": "192.168.0.101", "HIVE_ROUTER": "192.168.0.1", "HIVE_VIP3": "10.0.0.5",
        "HIVE_VIP_V6": "2001:db8::10", "HIVE_MARK": "zabbix", "OTHER": "x"})
    assert vips == [d.Vip("192.168.0.101", "192.168.0.1"), d.Vip("2001:db8::10"), d.Vip("10.0.0.5")]
    assert marks == ["zabbix"] and problems == []


def test_bad_labels_are_reported_not_applied() -> None:
    vips, marks, problems = d.wanted_from_labels({"HIVE_VIP": "nope", "HIVE_VIP1": "2001:db8::1",
                                                  "HIVE_VIP2_V6": "10.0.0.1", "HIVE_VIP9": "10.0.0.9"})
    assert vips == [] and marks == []
    assert len(problems) == 3 and problems[0].startswith("HIVE_VIP:")


# -- the daemon: NIC selection by network ------------------------------------------------------------------------

IP_JSON = json.dumps([
    {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host"}]},
    {"ifname": "eth0", "addr_info": [
        {"family": "inet", "local": "10.97.0.3", "prefixlen": 24, "scope": "global"},
        {"family": "inet6", "local": "2001:db8::3", "prefixlen": 64, "scope": "global"},
        {"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"}]},
    {"ifname": "eth1", "addr_info": [{"family": "inet", "local": "10.97.0.130", "prefixlen": 25,
                                      "scope": "global"}]},
    {"ifname": "docker0", "addr_info": [{"family": "inet", "local": "172.31.254.129", "prefixlen": 25,
                                         "scope": "global"}]},
])
ADDRS = d.parse_ip_json(IP_JSON)


def test_ip_json_keeps_global_addresses_only() -> None:
    assert [(a.ifname, a.address) for a in ADDRS] == [
        ("eth0", "10.97.0.3"), ("eth0", "2001:db8::3"), ("eth1", "10.97.0.130"), ("docker0", "172.31.254.129")]


@pytest.mark.parametrize(("vip", "nic"), [
    ("10.97.0.50", ("eth0", 24)),
    ("10.97.0.200", ("eth1", 25)),  # both networks contain it: the more specific one wins
    ("2001:db8::99", ("eth0", 64)),
    ("172.31.254.140", ("docker0", 25)),
    ("192.0.2.1", None),
    ("127.0.0.5", None),  # loopback never carries a VIP
])
def test_nic_is_the_one_whose_network_contains_the_vip(vip: str, nic: tuple[str, int] | None) -> None:
    assert d.nic_for(vip, ADDRS) == nic


# -- the daemon: plan ---------------------------------------------------------------------------------------------

def test_a_task_arriving_adds_vip_and_mark_and_a_second_pass_does_nothing() -> None:
    state = d.State()
    actions, problems = d.plan([d.Vip("10.97.0.100", "10.97.0.1")], ["follow"], state, ADDRS, {"hives": "true"})
    assert actions == [d.Action("add-vip", "10.97.0.100", "eth0/24", "10.97.0.1"), d.Action("set-mark", "follow")]
    assert problems == []
    now = [*ADDRS, d.NicAddress("eth0", "10.97.0.100", 24)]
    state = d.State(vips={"10.97.0.100": "eth0/24"}, marks=["follow"])
    assert d.plan([d.Vip("10.97.0.100")], ["follow"], state, now, {"follow": "true"}) == ([], [])


def test_the_task_leaving_removes_only_what_we_added() -> None:
    now = [*ADDRS, d.NicAddress("eth0", "10.97.0.100", 24)]
    state = d.State(vips={"10.97.0.100": "eth0/24"}, marks=["follow"])
    actions, _ = d.plan([], [], state, now, {"follow": "true", "hives": "true"})
    assert actions == [d.Action("del-vip", "10.97.0.100", "eth0/24"), d.Action("unset-mark", "follow")]


def test_addresses_and_labels_we_did_not_add_are_never_taken() -> None:
    """The node's own address as a VIP, or a label the swarm step set, stay when the task leaves."""
    actions, _ = d.plan([d.Vip("10.97.0.3")], ["hives"], d.State(), ADDRS, {"hives": "true"})
    assert actions == []
    assert d.plan([], [], d.State(), ADDRS, {"hives": "true"}) == ([], [])


def test_a_vip_no_nic_can_carry_is_a_problem_and_the_rest_still_happens() -> None:
    actions, problems = d.plan([d.Vip("192.0.2.1"), d.Vip("10.97.0.101")], [], d.State(), ADDRS, {})
    assert actions == [d.Action("add-vip", "10.97.0.101", "eth0/24")]
    assert problems == ["VIP 192.0.2.1: no NIC of this node has an address in its network"]


def test_a_vip_lost_while_recorded_is_added_again() -> None:
    state = d.State(vips={"10.97.0.100": "eth0/24"})
    actions, _ = d.plan([d.Vip("10.97.0.100")], [], state, ADDRS, {})
    assert actions == [d.Action("add-vip", "10.97.0.100", "eth0/24")]


def test_state_file_round_trip_and_unreadable_file_means_empty(tmp_path: Path) -> None:
    path = str(tmp_path / "sub" / "state.json")
    assert d.load_state(path) == d.State()
    d.save_state(d.State(vips={"10.0.0.1": "eth0/24"}, marks=["b", "a", "a"]), path)
    assert d.load_state(path) == d.State(vips={"10.0.0.1": "eth0/24"}, marks=["a", "b"])
    Path(path).write_text("{broken")
    assert d.load_state(path) == d.State()


def test_relevant_events_are_task_containers_and_service_changes() -> None:
    task = {"Type": "container", "Action": "die", "Actor": {"Attributes": {d.SERVICE_ID: "x"}}}
    plain = {"Type": "container", "Action": "die", "Actor": {"Attributes": {"name": "web"}}}
    assert d.relevant(task) and not d.relevant(plain)
    assert d.relevant({"Type": "service", "Action": "update"})
    assert not d.relevant({"Type": "container", "Action": "exec_start: sh", "Actor": {"Attributes": {
        d.SERVICE_ID: "x"}}})


# -- the daemon: explicit NIC, DNAT/SNAT ---------------------------------------------------------------------------

def test_the_nic_form_names_interface_and_prefix() -> None:
    vips, _, problems = d.wanted_from_labels({"HIVE_VIP": "10.1.32.12/20@bond0", "HIVE_VIP1": "10.1.32.13@bond0"})
    assert vips == [d.Vip("10.1.32.12", nic="bond0/20")] and len(problems) == 1
    actions, _ = d.plan(vips, [], d.State(), ADDRS, {})
    assert actions == [d.Action("add-vip", "10.1.32.12", "bond0/20")]


@pytest.mark.parametrize(("value", "ports", "bad"), [
    ("80", ("tcp/80",), 0), ("80, 443/tcp,53/udp", ("tcp/80", "tcp/443", "udp/53"), 0),
    ("0,70000,80/sctp,x", (), 4), ("", (), 0)])
def test_dnat_ports(value: str, ports: tuple[str, ...], bad: int) -> None:
    got, problems = d.parse_ports(value)
    assert got == ports and len(problems) == bad


NAT_LABELS = {"HIVE_VIP": "10.97.0.100", "HIVE_DNAT_PORTS": "8080", "HIVE_ENABLE_VIP_SNAT": "true"}
# what `iptables -S` prints for the rules the daemon inserts (iptables 1.8.9, Debian 12 and this controller)
IPTABLES_S = {
    ("nat", "DOCKER"): '-N DOCKER\n-A DOCKER -d 10.97.0.100/32 -p tcp -m tcp --dport 8080 -m comment --comment '
                       '"hive-follow:10.97.0.100" -j DNAT --to-destination 172.18.0.3:8080\n'
                       '-A DOCKER -i docker0 -j RETURN\n',
    ("filter", "DOCKER"): '-N DOCKER\n-A DOCKER -d 172.18.0.3/32 ! -i docker_gwbridge -o docker_gwbridge -p tcp '
                          '-m tcp --dport 8080 -m comment --comment "hive-follow:10.97.0.100" -j ACCEPT\n',
    ("nat", "POSTROUTING"): '-P POSTROUTING ACCEPT\n-A POSTROUTING -s 172.18.0.3/32 -o eth0 -m comment --comment '
                            '"hive-follow:10.97.0.100" -j SNAT --to-source 10.97.0.100\n'
                            '-A POSTROUTING -s 172.18.0.0/16 ! -o docker_gwbridge -j MASQUERADE\n',
}


def current_rules() -> set[tuple[str, str]]:
    return set().union(*(d.parse_rules(t, c, text) for (t, c), text in IPTABLES_S.items()))


def test_nat_rules_are_added_after_the_vip_and_match_what_iptables_prints() -> None:
    vips, _, problems = d.wanted_from_labels(NAT_LABELS, "172.18.0.3")
    assert problems == []
    actions, _ = d.plan(vips, [], d.State(), ADDRS, {})
    assert [a.kind for a in actions] == ["add-vip", "add-rule", "add-rule", "add-rule"]
    added = {(a.target, a.where) for a in actions if a.kind == "add-rule"}
    assert added == current_rules()  # so once in place, nothing is planned again
    now = [*ADDRS, d.NicAddress("eth0", "10.97.0.100", 24)]
    state = d.State(vips={"10.97.0.100": "eth0/24"})
    assert d.plan(vips, [], state, now, {}, current_rules()) == ([], [])


def test_nat_rules_follow_a_new_container_address_and_go_before_the_vip() -> None:
    now = [*ADDRS, d.NicAddress("eth0", "10.97.0.100", 24)]
    state = d.State(vips={"10.97.0.100": "eth0/24"})
    vips, _, _ = d.wanted_from_labels(NAT_LABELS, "172.18.0.9")
    actions, _ = d.plan(vips, [], state, now, {}, current_rules())
    assert [a.kind for a in actions] == ["del-rule"] * 3 + ["add-rule"] * 3
    assert all("172.18.0.9" in a.where for a in actions if a.kind == "add-rule")
    actions, _ = d.plan([], [], state, now, {}, current_rules())
    assert [a.kind for a in actions] == ["del-rule"] * 3 + ["del-vip"]


def test_nat_without_a_gwbridge_address_or_for_ipv6_sets_the_address_alone() -> None:
    vips, _, problems = d.wanted_from_labels(NAT_LABELS, "")
    assert vips == [d.Vip("10.97.0.100")] and "overlay network" in problems[0]
    vips, _, problems = d.wanted_from_labels({"HIVE_VIP_V6": "2001:db8::9", "HIVE_DNAT_PORTS_V6": "80"}, "172.18.0.3")
    assert vips == [d.Vip("2001:db8::9")] and "IPv6" in problems[0]


def test_rules_of_others_are_never_ours() -> None:
    assert d.parse_rules("nat", "POSTROUTING", IPTABLES_S[("nat", "POSTROUTING")]) == {
        ("nat POSTROUTING", "-s 172.18.0.3/32 -o eth0 -m comment --comment hive-follow:10.97.0.100 "
                            "-j SNAT --to-source 10.97.0.100")}


def test_only_a_shutdown_takes_everything_back_on_stop() -> None:
    assert d.leaving("stopping\n")
    assert not d.leaving("running\n") and not d.leaving("degraded\n")
