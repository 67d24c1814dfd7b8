"""Firewall planning from canned facts and probe output: exact saved-file content and live iptables commands."""

from __future__ import annotations

import base64
import ipaddress
import shlex
import subprocess
from pathlib import Path

import pytest
from fake_host import FakeHost, plan_task
from probe_runner import run_probe

from hive_nornir.engine.errors import StepFailed
from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.base import Plan
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.service import Service
from hive_nornir.tasks.net.firewall import (
    ESTABLISHED,
    HIVE_END,
    REJECT,
    RULE_SETS,
    SSH_OPEN,
    STOCK_RULES,
    STRICT_MARKER,
    LiveRules,
    Rule,
    RulesBlock,
    admits,
    base_rules,
    input_rules,
    port_list,
    rule_set,
    rules_path,
    saved,
    saved_chain,
    saved_chains,
    service_rule,
    source,
    ssh_ports,
    ssh_rule,
)
from hive_nornir.tasks.net.internal_network import firewall_primitives, interface_primitives
from hive_nornir.tasks.net.iptables import PRESEED_CMD, hive_block, iptables, iptables_primitives
from hive_nornir.tasks.ssh.reach import port_refusal, sources_refusal
from hive_nornir.tasks.ssh.strict_source_ip import strict_primitives, strict_source_ip

CLIENT = "198.51.100.7"  # where this SSH session comes from, as the facts carry it
DEB, EL = canned("debian", ssh_client=CLIENT, ssh_port=22), canned("redhat", ssh_client=CLIENT, ssh_port=22)
FAMILIES = [DEB, EL]
IPS = ["10.83.0.4", "10.83.0.5", "10.83.0.6"]
HIVE_BLOCK = ("# BEGIN HIVE-BUILDER MANAGED BLOCK setup HIVE-SERVICE chain\n-N HIVE-SERVICE\n"
              "-A INPUT -i docker_gwbridge -m state --state NEW -j ACCEPT\n-A INPUT -j HIVE-SERVICE\n"
              "# END HIVE-BUILDER MANAGED BLOCK setup HIVE-SERVICE chain\n")
EST_LINE = "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n"
STOCK_WITH_HIVE = STOCK_RULES.replace(EST_LINE, EST_LINE + HIVE_BLOCK)
SSH_PORT_2222 = ("# BEGIN HIVE-BUILDER MANAGED BLOCK for SSH PORT\n"
                 "-A INPUT -p tcp -m state --state NEW -m tcp --dport 2222 -j ACCEPT\n"
                 "# END HIVE-BUILDER MANAGED BLOCK for SSH PORT\n")


def file_out(content: str | None, stat: str = "600 root root", parent: bool = True) -> str:
    """Probe output of the saved rules file as content_probe prints it."""
    if content is None:
        return "exists=no" + ("\nparent=yes" if parent else "")
    data = content.encode()
    return f"stat={stat} {len(data)}\ncontent={base64.b64encode(data).decode()}"


def live_out(chain: str, rules: list[str], has: list[int] | None = None, stale: list[int] | None = None,
             client: str = "", port: int = 22, policy: str = "ACCEPT") -> str:
    """Probe output of LiveRules: `iptables -S CHAIN` lines, -C hits by index, and this session's address/port."""
    head = f"-P {chain} {policy}" if chain in ("INPUT", "FORWARD", "OUTPUT") else f"-N {chain}"
    lines = ["chain=yes", f"rule={head}", *(f"rule=-A {chain} {r}" for r in rules)]
    lines += [f"has={i}" for i in has or []] + [f"stale={i}" for i in stale or []]
    return "\n".join(lines + ([f"ssh_client={client}", f"ssh_port={port}"] if client else []))


def text_of(plan: Plan) -> str:
    [upload] = plan.uploads
    return upload.content.decode()


# -- rule text --------------------------------------------------------------------------------------------------
def test_rule_sets_table_is_hive_builders() -> None:
    assert {k: (v.proto, v.dports) for k, v in RULE_SETS.items()} == {
        "docker_api_swarm": ("tcp", ("2376", "2377", "7946")),
        "docker_swarm_udp": ("udp", ("7946", "4789")),
        "drbd": ("tcp", ("7000:7999",)),
        "zabbix_tcp": ("tcp", ("10050",)),
        "syslog": ("udp", ("10514",)),
        "registry": ("tcp", ("5000",)),  # ours: the Debian registry listens on the host, not behind docker
    }


def test_rules_are_written_as_iptables_s_prints_them() -> None:
    assert service_rule("drbd", "tcp", ["7000:7999"], "10.83.0.4") == (
        '-s 10.83.0.4/32 -p tcp -m multiport --dports 7000:7999 -m conntrack --ctstate NEW '
        '-m comment --comment "allow drbd" -j ACCEPT')
    assert source("203.0.113.9/24") == "203.0.113.0/24"
    with pytest.raises(ValueError, match="not an IPv4"):
        source("example.com")
    with pytest.raises(ValueError, match="not a port"):
        port_list(["22; reboot"])
    with pytest.raises(ValueError, match="at most 15"):
        port_list([str(p) for p in range(1000, 1016)])
    with pytest.raises(ValueError, match="tcp or udp"):
        service_rule("x", "icmp", [1], "10.0.0.1")


@pytest.mark.parametrize(("facts", "path"), [(DEB, "/etc/iptables/rules.v4"), (EL, "/etc/sysconfig/iptables")])
def test_saved_file_per_family(facts: Facts, path: str) -> None:
    assert rules_path(facts) == path
    body = base_rules(facts)
    assert body.endswith("-A INPUT -j REJECT --reject-with icmp-host-prohibited\n"
                         "-A FORWARD -j REJECT --reject-with icmp-host-prohibited\nCOMMIT\n")
    assert (body == STOCK_RULES) == facts.is_redhat


# -- the iptables step -------------------------------------------------------------------------------------------
def test_iptables_step_on_el_installs_services_removes_firewalld_enables_only() -> None:
    plan = plan_task(iptables, EL, installed=["firewalld"])  # a stock EL host runs firewalld
    assert plan.commands[:2] == ["dnf install -y iptables-services", "dnf remove -y firewalld"]
    assert plan.idents[:2] == ["packages[iptables-services]", "packages[firewalld]"]
    bare = plan_task(iptables, EL)  # a minimal image without firewalld: nothing to remove
    assert not any("firewalld" in c for c in bare.commands)
    items = iptables_primitives(EL)
    service = next(p for p in items if isinstance(p, Service))
    assert (service.name, service.enabled, service.state) == ("iptables", True, None)  # never a live restore
    assert [p.ident for p in items if isinstance(p, LiveRules)] == [
        "iptables[HIVE-SERVICE:chain]", "iptables[INPUT:hive base]", "iptables[FORWARD:hive base]"]


def test_iptables_step_on_debian_preseeds_then_installs_persistent() -> None:
    items = iptables_primitives(DEB)
    assert isinstance(items[0], Command) and items[0].cmd == PRESEED_CMD
    assert PRESEED_CMD == ("printf 'iptables-persistent iptables-persistent/autosave_v4 boolean false\\n"
                           "iptables-persistent iptables-persistent/autosave_v6 boolean false\\n' "
                           "| debconf-set-selections")
    assert items[0].unless and "iptables-persistent" in items[0].unless
    assert isinstance(items[1], Packages) and items[1].names == ("iptables", "iptables-persistent")
    service = next(p for p in items if isinstance(p, Service))
    assert (service.name, service.enabled, service.state) == ("netfilter-persistent", True, None)


def test_debian_without_a_file_gets_the_base_ruleset_plus_hive_block_validated() -> None:
    plan = hive_block(DEB).plan(DEB, file_out(None))
    [upload] = plan.uploads
    assert upload.path == "/etc/iptables/rules.v4" and upload.mode == "0600"
    assert upload.validate == "iptables-restore --test %s"
    assert upload.content.decode() == (
        "# hive_nornir base ruleset: the rules of EL's stock /etc/sysconfig/iptables (iptables-services)\n"
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + EST_LINE + HIVE_BLOCK +
        "-A INPUT -p icmp -j ACCEPT\n-A INPUT -i lo -j ACCEPT\n"
        "-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT\n"
        "-A INPUT -j REJECT --reject-with icmp-host-prohibited\n"
        "-A FORWARD -j REJECT --reject-with icmp-host-prohibited\nCOMMIT\n")


def test_el_stock_file_gets_the_block_after_established_keeping_mode_then_no_change() -> None:
    plan = hive_block(EL).plan(EL, file_out(STOCK_RULES, "600 root root"))
    assert text_of(plan) == STOCK_WITH_HIVE and plan.uploads[0].mode == "0600"
    assert "+-N HIVE-SERVICE\n" in plan.diff
    assert not hive_block(EL).plan(EL, file_out(STOCK_WITH_HIVE)).changed


@pytest.mark.parametrize("facts", FAMILIES)
def test_sshd_port_other_than_22_is_opened_in_file_and_live(facts: Facts) -> None:
    items = iptables_primitives(facts, port=2222)
    [port_block] = [p for p in items if isinstance(p, RulesBlock) and "SSH PORT" in p.marker]
    assert text_of(port_block.plan(facts, file_out(STOCK_WITH_HIVE))) == STOCK_WITH_HIVE.replace(
        EST_LINE, EST_LINE + SSH_PORT_2222)
    assert input_rules(ssh_port=2222)[:2] == (ESTABLISHED, "-p tcp -m state --state NEW -m tcp --dport 2222 -j ACCEPT")
    assert SSH_OPEN in input_rules(ssh_port=2222)  # 22 stays open: the running session may still use it
    [port22] = [p for p in iptables_primitives(facts) if isinstance(p, RulesBlock) and "SSH PORT" in p.marker]
    assert not port22.plan(facts, file_out(STOCK_WITH_HIVE)).changed  # port 22: no block


def test_debian_file_dir_missing_is_a_prerequisite_and_bad_markers_an_error() -> None:
    assert hive_block(DEB).plan(DEB, file_out(None, parent=False)).missing
    broken = STOCK_RULES + "# BEGIN HIVE-BUILDER MANAGED BLOCK setup HIVE-SERVICE chain\n"
    assert "unbalanced" in hive_block(EL).plan(EL, file_out(broken)).error


@pytest.mark.parametrize("facts", FAMILIES)
def test_live_input_on_an_empty_table_keeps_established_and_ssh_before_reject(facts: Facts) -> None:
    [chain, inp, fwd] = iptables_primitives(facts)[-3:]
    assert chain.plan(facts, "chain=no").commands == ["iptables -w -N HIVE-SERVICE"]
    assert "unknown" in inp.plan(facts, live_out("INPUT", [])).error  # a REJECT, and our session not seen
    plan = inp.plan(facts, live_out("INPUT", [], client="10.83.0.1"))
    inserts = [c for c in plan.commands if " -C " not in c]
    assert inserts == [
        "iptables -w -A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT",
        "iptables -w -A INPUT -i docker_gwbridge -m state --state NEW -j ACCEPT",
        "iptables -w -A INPUT -j HIVE-SERVICE",
        "iptables -w -A INPUT -p icmp -j ACCEPT",
        "iptables -w -A INPUT -i lo -j ACCEPT",
        "iptables -w -A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT",
        "iptables -w -A INPUT -j REJECT --reject-with icmp-host-prohibited",
    ]
    # every rule is verified with -C afterwards, in the same exec (set -e fails the step)
    assert plan.commands[len(inserts)].startswith("iptables -w -C INPUT -m state --state RELATED,ESTABLISHED")
    assert fwd.plan(facts, live_out("FORWARD", [])).commands[0] == f"iptables -w -A FORWARD {REJECT}"


def test_live_input_on_el_stock_rules_inserts_the_hive_jump_after_established() -> None:
    stock = [ESTABLISHED, "-p icmp -j ACCEPT", "-i lo -j ACCEPT", SSH_OPEN, REJECT]
    rules = input_rules()
    has = [i for i, r in enumerate(rules) if r in stock]
    plan = LiveRules(chain="INPUT", rules=rules).plan(EL, live_out("INPUT", stock, has))
    assert [c for c in plan.commands if " -C " not in c] == [
        "iptables -w -I INPUT 2 -i docker_gwbridge -m state --state NEW -j ACCEPT",
        "iptables -w -I INPUT 3 -j HIVE-SERVICE",
    ]
    assert plan.summary == "INPUT: insert 2 rule(s)"
    assert not LiveRules(chain="INPUT", rules=rules).plan(EL, live_out("INPUT", [], list(range(len(rules))))).changed


def test_live_rules_never_insert_a_reject_ahead_of_established() -> None:
    plan = LiveRules(chain="INPUT", rules=(REJECT,)).plan(DEB, live_out("INPUT", []))
    assert "refusing" in plan.error
    # existing REJECT first: the ACCEPTs go in front of it, the session survives
    plan = LiveRules(chain="INPUT", rules=(ESTABLISHED, SSH_OPEN, REJECT)).plan(DEB, live_out("INPUT", [REJECT], [2]))
    assert [c for c in plan.commands if " -C " not in c] == [
        f"iptables -w -I INPUT 1 {ESTABLISHED}", f"iptables -w -I INPUT 2 {SSH_OPEN}"]


def test_live_rules_missing_chain_or_iptables_is_a_prerequisite() -> None:
    assert "does not exist" in LiveRules(chain="HIVE-SERVICE", rules=("-j ACCEPT",)).plan(DEB, "chain=no").missing
    assert LiveRules(chain="INPUT").plan(DEB, "iptables=no").missing == "iptables is not installed"


def test_live_probe_is_read_only_sh() -> None:
    probe = LiveRules(chain="INPUT", rules=(ESTABLISHED,), absent=(SSH_OPEN,), ssh_sources=("10.0.0.1/32",)).probe(DEB)
    assert f"iptables -w -C INPUT {ESTABLISHED} >/dev/null 2>&1 && echo has=0" in probe
    assert f"iptables -w -C INPUT {SSH_OPEN} >/dev/null 2>&1 && echo stale=0" in probe
    assert " -I " not in probe and " -A " not in probe and " -D " not in probe and " -N " not in probe
    out = run_probe(LiveRules(chain="INPUT", rules=(ESTABLISHED,)), DEB)  # real sh here; iptables may be absent
    assert "iptables=no" in out or "chain=" in out


# -- rule sets (called by other tasks) ---------------------------------------------------------------------------
@pytest.mark.parametrize("facts", FAMILIES)
def test_rule_set_has_one_rule_per_source_in_file_and_live(facts: Facts) -> None:
    block, live = rule_set(facts, "docker_api_swarm", sources=IPS)
    assert isinstance(block, RulesBlock) and isinstance(live, LiveRules)
    plan = block.plan(facts, file_out(STOCK_WITH_HIVE))
    wanted = "".join(
        f'-A HIVE-SERVICE -s {ip}/32 -p tcp -m multiport --dports 2376,2377,7946 -m conntrack --ctstate NEW '
        f'-m comment --comment "allow docker_api_swarm" -j ACCEPT\n' for ip in IPS)
    block_text = ("# BEGIN HIVE-BUILDER MANAGED BLOCK for docker_api_swarm\n" + wanted +
                  "# END HIVE-BUILDER MANAGED BLOCK for docker_api_swarm\n")
    assert text_of(plan) == STOCK_WITH_HIVE.replace(HIVE_BLOCK, HIVE_BLOCK + block_text)
    assert plan.uploads[0].path == rules_path(facts) and plan.uploads[0].validate == "iptables-restore --test %s"
    lplan = live.plan(facts, live_out("HIVE-SERVICE", []))
    assert [c for c in lplan.commands if " -C " not in c] == [  # argv joined: the comment in shell quotes
        "iptables -w -A HIVE-SERVICE " + shlex.join(shlex.split(line[len("-A HIVE-SERVICE "):]))
        for line in wanted.splitlines()]
    assert "--comment 'allow docker_api_swarm' -j ACCEPT" in lplan.commands[0]


def test_rule_set_before_the_iptables_step_is_a_prerequisite_not_a_broken_file() -> None:
    block, live = rule_set(EL, "drbd", sources=IPS)
    assert "no line" in block.plan(EL, file_out(STOCK_RULES)).missing
    assert block.plan(EL, file_out(None)).missing
    assert live.plan(EL, "chain=no").missing


def test_rule_set_custom_ports_and_internal_net_source() -> None:
    _, live = rule_set(DEB, "http_proxy", "tcp", [3128], IPS, internal_net="172.16.0.0/16")
    assert live.rules == (service_rule("http_proxy", "tcp", ["3128"], "172.16.0.0/16"),)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="give proto and dports"):
        rule_set(DEB, "unknown", sources=IPS)
    with pytest.raises(ValueError, match="no sources"):
        rule_set(DEB, "drbd")


# -- strict-source-ip --------------------------------------------------------------------------------------------
def strict_line(src: str, port: int) -> str:
    """A strict ssh rule as the saved file has it."""
    return (f"-A INPUT -s {src} -p tcp -m state --state NEW -m multiport --dports {port} "
            f"-m limit --limit 5/sec --limit-burst 20 -j ACCEPT")


SOURCES = ["203.0.113.0/24", "198.51.100.7/32"]


@pytest.mark.parametrize("facts", FAMILIES)
def test_strict_keeps_every_source_and_the_session_port_while_sshd_moves(facts: Facts) -> None:
    """hive_sshd_port 2222 while this session arrived on 22: both ports stay open to every source."""
    assert ssh_ports(22, 2222) == (22, 2222)
    block, port_block, live = strict_primitives(facts, SOURCES, ssh_ports(22, 2222))
    plan = block.plan(facts, file_out(STOCK_WITH_HIVE))
    lines = [strict_line(s, p) for p in (22, 2222) for s in SOURCES]
    strict = ("# BEGIN HIVE-BUILDER MANAGED BLOCK for SSH SOURCE IP STRICT\n" + "".join(f"{x}\n" for x in lines) +
              "# END HIVE-BUILDER MANAGED BLOCK for SSH SOURCE IP STRICT\n")
    assert text_of(plan) == STOCK_WITH_HIVE.replace(EST_LINE, EST_LINE + strict).replace(f"-A INPUT {SSH_OPEN}\n", "")
    current = [ESTABLISHED, "-p icmp -j ACCEPT", SSH_OPEN, REJECT]
    lplan = live.plan(facts, live_out("INPUT", current, [0], [0], client="198.51.100.7", port=22))
    assert [c for c in lplan.commands if " -C " not in c] == [
        f"iptables -w -I INPUT {i + 2} {line[len('-A INPUT '):]}" for i, line in enumerate(lines)] + [
        f"iptables -w -D INPUT {SSH_OPEN}"]
    assert lplan.commands[-1].startswith(f"if iptables -w -C INPUT {SSH_OPEN} 2>/dev/null; then")
    assert live.absent == (SSH_OPEN, "-p tcp -m state --state NEW -m tcp --dport 2222 -j ACCEPT")  # type: ignore[attr-defined]
    # second run: every rule there, the open rule gone -> nothing to do
    after = [ESTABLISHED, *(x[len("-A INPUT "):] for x in lines), "-p icmp -j ACCEPT", REJECT]
    assert not live.plan(facts, live_out("INPUT", after, list(range(5)), client="198.51.100.7")).changed
    assert not block.plan(facts, file_out(text_of(plan))).changed
    # the SSH PORT block an earlier run without sources wrote goes away
    opened = STOCK_WITH_HIVE.replace(EST_LINE, EST_LINE + SSH_PORT_2222)
    assert text_of(port_block.plan(facts, file_out(opened))) == STOCK_WITH_HIVE
    assert not port_block.plan(facts, file_out(STOCK_WITH_HIVE)).changed
    assert not port_block.plan(facts, file_out(None)).changed


def test_strict_on_the_new_port_only_is_refused_while_the_session_uses_22() -> None:
    """The audit's lock-out: rules for 2222 only, the open 22 rule deleted, sshd still on 22."""
    _, _, live = strict_primitives(DEB, SOURCES, 2222)
    current = [ESTABLISHED, "-p icmp -j ACCEPT", SSH_OPEN, REJECT]
    plan = live.plan(DEB, live_out("INPUT", current, [0], [0], client="198.51.100.7", port=22))
    assert plan.error == ("refusing: INPUT would not accept a NEW ssh login from 198.51.100.7 on port 22, the port "
                          "this session arrived on (sshd still listens there); the next login would be rejected")
    # the iptables step on a fresh host likewise: strict rules for 2222 only, session on 22
    [_, inp, _] = iptables_primitives(DEB, SOURCES, 2222)[-3:]
    assert "on port 22" in inp.plan(DEB, live_out("INPUT", [], client="198.51.100.7", port=22)).error
    [_, inp, _] = iptables_primitives(DEB, SOURCES, ssh_ports(22, 2222))[-3:]
    assert not inp.plan(DEB, live_out("INPUT", [], client="198.51.100.7", port=22)).error


def test_strict_after_the_move_drops_the_old_port_22_rules() -> None:
    """The session arrives on 2222 (sshd moved, the inventory points there): 22 is closed, live and saved."""
    assert ssh_ports(2222, 2222) == (2222,)
    block, _, live = strict_primitives(DEB, SOURCES, ssh_ports(2222, 2222))
    old = [strict_line(s, 22)[len("-A INPUT "):] for s in SOURCES]
    new = [strict_line(s, 2222)[len("-A INPUT "):] for s in SOURCES]
    assert live.absent == (SSH_OPEN, "-p tcp -m state --state NEW -m tcp --dport 2222 -j ACCEPT", *old)  # type: ignore[attr-defined]
    current = [ESTABLISHED, *old, *new, REJECT]
    plan = live.plan(DEB, live_out("INPUT", current, [0, 1, 2], [2, 3], client="198.51.100.7", port=2222))
    assert [c for c in plan.commands if " -C " not in c] == [f"iptables -w -D INPUT {r}" for r in old]
    begin, end = ("# BEGIN HIVE-BUILDER MANAGED BLOCK for SSH SOURCE IP STRICT\n",
                  "# END HIVE-BUILDER MANAGED BLOCK for SSH SOURCE IP STRICT\n")
    both = "".join(f"{strict_line(s, p)}\n" for p in (22, 2222) for s in SOURCES)
    moved = "".join(f"{strict_line(s, 2222)}\n" for s in SOURCES)
    text = STOCK_WITH_HIVE.replace(EST_LINE, EST_LINE + begin + both + end).replace(f"-A INPUT {SSH_OPEN}\n", "")
    moved_facts = canned("debian", ssh_client=CLIENT, ssh_port=2222)  # the session arrives on 2222 now
    assert text_of(block.plan(moved_facts, file_out(text))) == text.replace(both, moved)
    assert "on port 22 " in block.plan(DEB, file_out(text)).error  # the saved file is held to the same test
    # same chain, but the session still on 22: refused
    plan = live.plan(DEB, live_out("INPUT", current, [0, 1, 2], [2, 3], client="198.51.100.7", port=22))
    assert "on port 22" in plan.error


def test_admits_reads_iptables_s_rules() -> None:
    """The lock-out check's rule reader: source, proto, state, ports, policy; unknown matches never admit."""
    a = ipaddress.ip_address("10.83.0.1")
    assert admits(input_rules(), a, 22) and not admits(input_rules(), a, 2222)
    assert admits(input_rules(ssh_port=(22, 2222)), a, 2222)
    assert admits([service_rule("x", "tcp", ["20:30"], "10.83.0.0/24"), REJECT], a, 22)  # quoted comment, range
    assert not admits([service_rule("x", "udp", ["22"], "10.83.0.0/24"), REJECT], a, 22)
    assert not admits([f"-i eth0 {SSH_OPEN}", REJECT], a, 22)  # interface unknown here: not proof
    assert not admits([f"! -s 10.9.0.0/16 {SSH_OPEN}", REJECT], a, 22)
    assert not admits(["-p tcp -j DROP", SSH_OPEN], a, 22)
    assert admits(["-p udp -j DROP", SSH_OPEN, REJECT], a, 22)
    assert admits([], a, 22) and not admits([], a, 22, "DROP")
    plan = LiveRules(chain="INPUT", rules=(ESTABLISHED,)).plan(
        DEB, live_out("INPUT", [], client="10.83.0.1", policy="DROP"))
    assert "would not accept" in plan.error


def test_strict_refuses_when_this_session_is_not_a_source() -> None:
    _, _, live = strict_primitives(DEB, ["198.51.100.7"])
    assert live.plan(DEB, live_out("INPUT", [ESTABLISHED, SSH_OPEN, REJECT], [0], [0])).error.startswith(
        "refusing: this change deletes")  # session unknown: no deletion
    plan = live.plan(DEB, live_out("INPUT", [ESTABLISHED, SSH_OPEN, REJECT], [0], [0], client="10.83.0.1"))
    assert "comes from 10.83.0.1" in plan.error
    [_, inp, _] = iptables_primitives(DEB, ["198.51.100.7/32"])[-3:]
    assert "comes from 10.83.0.1" in inp.plan(DEB, live_out("INPUT", [], client="10.83.0.1")).error
    # with strict sources the iptables step never opens ssh to everyone
    assert SSH_OPEN not in inp.rules  # type: ignore[attr-defined]


# -- internal-network --------------------------------------------------------------------------------------------
def test_internal_network_el_uses_networkmanager() -> None:
    items = interface_primitives(EL, "eth1", "10.1.0.4", 24)
    assert isinstance(items[0], Packages) and items[0].names == ("NetworkManager",)
    add, up = items[2], items[3]
    assert isinstance(add, Command) and isinstance(up, Command)
    assert add.cmd == ("nmcli conn add type ethernet ifname eth1 con-name internal_net && "
                       "nmcli conn modify internal_net ipv4.method manual ipv4.addresses 10.1.0.4/24")
    assert add.unless == "nmcli -t conn show internal_net"
    assert up.cmd == "nmcli conn up internal_net"
    assert up.unless == "ip -4 -o addr show dev eth1 | grep -qF ' 10.1.0.4/24 '"


def test_internal_network_debian_uses_an_ifupdown_stanza() -> None:
    items = interface_primitives(DEB, "eth1", "10.1.0.4", 24)
    assert isinstance(items[0], Packages) and items[0].names == ("ifupdown",)
    stanza = items[2]
    assert stanza.ident == "file[/etc/network/interfaces.d/internal_net]"
    assert getattr(stanza, "content", "") == ("# hive internal network\nauto eth1\niface eth1 inet static\n"
                                              "    address 10.1.0.4/24\n")
    assert isinstance(items[3], Command) and items[3].cmd == "ifup eth1"


@pytest.mark.parametrize("facts", FAMILIES)
def test_internal_network_rule_follows_icmp(facts: Facts) -> None:
    block, live = firewall_primitives(facts, "eth1", "10.1.0.0/24")
    rule = "-A INPUT -s 10.1.0.0/24 -i eth1 -m state --state NEW -j ACCEPT\n"
    icmp = "-A INPUT -p icmp -j ACCEPT\n"
    assert text_of(block.plan(facts, file_out(STOCK_WITH_HIVE))) == STOCK_WITH_HIVE.replace(
        icmp, icmp + "# BEGIN ANSIBLE MANAGED BLOCK INPUT\n" + rule + "# END ANSIBLE MANAGED BLOCK INPUT\n")
    stock = [ESTABLISHED, "-p icmp -j ACCEPT", "-i lo -j ACCEPT", REJECT]
    plan = live.plan(facts, live_out("INPUT", stock, [0]))
    assert plan.commands[0] == f"iptables -w -I INPUT 3 {rule[len('-A INPUT '):-1]}"


def test_session_port_is_read_from_the_facts_else_probed() -> None:
    from hive_nornir.tasks.net.firewall import session_port

    known = FakeHost(facts=canned("debian", ssh_port=2200), answer=lambda _c: "ssh_client=10.0.0.9\nssh_port=22\n")
    assert session_port(known) == 2200
    assert known.result.ran == []
    asked = FakeHost(facts=canned("debian"), answer=lambda _c: "ssh_client=10.0.0.9\nssh_port=22\n")
    assert session_port(asked) == 22
    assert len(asked.result.ran) == 1


# -- the saved file admits our next login (issue 10 #6) -------------------------------------------------------
CONTROLLER = canned("debian", ssh_client="10.83.0.1", ssh_port=22)  # the lab's gateway, as the host sees us
OTHER_ONLY = ("# BEGIN HIVE-BUILDER MANAGED BLOCK for SSH SOURCE IP STRICT\n" + strict_line("198.51.100.7/32", 22) +
              "\n# END HIVE-BUILDER MANAGED BLOCK for SSH SOURCE IP STRICT\n")
# what the old strict-source-ip left behind: only the other source, the open ssh rule gone
LOCKED_FILE = STOCK_WITH_HIVE.replace(EST_LINE, EST_LINE + OTHER_ONLY).replace(f"-A INPUT {SSH_OPEN}\n", "")


def test_saved_chain_reads_the_filter_table_only() -> None:
    text = ("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j DROP\nCOMMIT\n" + STOCK_RULES +
            "*filter\n-I INPUT 2 -p udp -j DROP\nCOMMIT\n")
    rules, policy = saved_chain(text)
    assert policy == "ACCEPT" and rules[0] == ESTABLISHED and rules[1] == "-p udp -j DROP" and rules[-1] == REJECT
    assert saved_chain("*filter\n:INPUT DROP [0:0]\nCOMMIT\n") == ([], "DROP")


def test_a_strict_block_that_excludes_us_is_refused_in_the_saved_file() -> None:
    block, _, _ = strict_primitives(CONTROLLER, ["198.51.100.7"])
    plan = block.plan(CONTROLLER, file_out(STOCK_WITH_HIVE))
    assert plan.error == ("refusing: /etc/iptables/rules.v4 would not accept a NEW ssh login from 10.83.0.1 on "
                          "port 22 (the address and port this session uses) once it is loaded, i.e. after the "
                          "next boot; nothing changed")
    assert not plan.uploads
    # covered: written (the open rule goes, ours stays)
    assert "-s 10.83.0.1/32" in text_of(strict_primitives(CONTROLLER, ["10.83.0.1"])[0].plan(
        CONTROLLER, file_out(STOCK_WITH_HIVE)))


def test_unknown_session_refuses_a_saved_file_change_that_cuts() -> None:
    unknown = canned("debian")
    block, _, _ = strict_primitives(unknown, ["198.51.100.7"])
    assert "are unknown" in block.plan(unknown, file_out(STOCK_WITH_HIVE)).error
    # adding ACCEPTs only never cuts: a rule set on a file, session unknown, still lands
    drbd, _ = rule_set(unknown, "drbd", sources=IPS)
    assert drbd.plan(unknown, file_out(STOCK_WITH_HIVE)).uploads


def test_removing_the_sources_repairs_a_file_that_locks_us_out() -> None:
    """The file an old run left (only another source may log in): the iptables step without sources fixes it."""
    plan = plan_task(iptables, CONTROLLER, files={"/etc/iptables/rules.v4": LOCKED_FILE})
    text = plan.files["/etc/iptables/rules.v4"]
    assert "SSH SOURCE IP STRICT" not in text and "198.51.100.7" not in text
    assert f"-A INPUT {SSH_OPEN}\n" in text
    rules, policy = saved_chain(text)
    assert admits(rules, ipaddress.ip_address("10.83.0.1"), 22, policy)
    # and the repaired file stays as it is on the next run
    again = plan_task(iptables, CONTROLLER, files={"/etc/iptables/rules.v4": text})
    assert "/etc/iptables/rules.v4" not in again.files


def test_a_rule_set_may_still_edit_a_file_that_already_locks_us_out() -> None:
    """Not made worse: the edit goes in (the iptables step is what repairs the ssh rule)."""
    drbd, _ = rule_set(CONTROLLER, "drbd", sources=IPS)
    assert drbd.plan(CONTROLLER, file_out(LOCKED_FILE)).uploads


# -- refusals before any change (issue 10 #6, #8) --------------------------------------------------------------
def test_iptables_and_strict_refuse_sources_that_exclude_us_before_any_probe() -> None:
    for task in (iptables, strict_source_ip):
        ran: list[str] = []

        def run(command: str, ran: list[str] = ran) -> str:
            ran.append(command)
            return ""

        with pytest.raises(StepFailed, match=r"refused, nothing changed: hive_ssh_source_ips: this SSH session "
                                             r"comes from 10\.83\.0\.1"):
            plan_task(task, CONTROLLER, host_vars={"hive_ssh_source_ips": ["198.51.100.7"]}, run=run)
        assert ran == []


def test_a_refused_sshd_port_opens_nothing() -> None:
    """hive_sshd_port 2222 while sshd receives us on 22: the sshd step refuses it, so no step opens 2222."""
    for task in (iptables, strict_source_ip):
        with pytest.raises(StepFailed, match=r"refused, nothing changed: hive_sshd_port: Port 2222 wanted, but the "
                                             r"controller reaches sshd on port 22"):
            plan_task(task, CONTROLLER, host_vars={"hive_sshd_port": 2222, "hive_ssh_source_ips": ["10.83.0.1"]})
    moved = canned("debian", ssh_client="10.83.0.1", ssh_port=2222)  # the controller already arrives on 2222
    plan = plan_task(iptables, moved, host_vars={"hive_sshd_port": 2222})
    assert "-A INPUT -p tcp -m state --state NEW -m tcp --dport 2222 -j ACCEPT" in plan.files[rules_path(moved)]


@pytest.mark.parametrize(("wanted", "session", "refused"), [
    (None, 22, ""), (22, 22, ""), (2222, 2222, ""), (2222, 22, "controller reaches sshd on port 22"),
    (22, None, "is unknown")])
def test_port_refusal(wanted: int | None, session: int | None, refused: str) -> None:
    why = port_refusal(wanted, session)
    assert (refused in why and bool(why)) if refused else why == ""


@pytest.mark.parametrize(("sources", "client", "refused"), [
    ([], "", ""), (["10.83.0.0/24"], "10.83.0.1", ""), (["198.51.100.7/32"], "10.83.0.1", "comes from 10.83.0.1"),
    (["10.83.0.0/24"], "", "is unknown"), (["10.83.0.0/24"], "garbage", "is unknown")])
def test_sources_refusal(sources: list[str], client: str, refused: str) -> None:
    why = sources_refusal(sources, client)
    assert (refused in why and bool(why)) if refused else why == ""


def test_ssh_connection_refuses_lockouts_before_the_phase_changes_anything() -> None:
    """The first step of setup-hosts: facts known, nothing changed yet; the host drops out of the phase here."""
    from hive_nornir.tasks.ssh.ssh_connection import ssh_connection

    wanted = {"hive_ssh_source_ips": "198.51.100.7, 203.0.113.0/24", "hive_sshd_port": "2222"}
    ctx = FakeHost(facts=CONTROLLER, host_vars=wanted)
    with pytest.raises(StepFailed) as err:
        ssh_connection(ctx)
    assert "hive_sshd_port: Port 2222 wanted" in str(err.value)
    assert "comes from 10.83.0.1, which hive_ssh_source_ips (198.51.100.7/32, 203.0.113.0/24)" in str(err.value)
    ctx = FakeHost(facts=CONTROLLER, host_vars={"hive_ssh_source_ips": "10.83.0.0/24", "hive_sshd_port": "22"})
    ssh_connection(ctx)
    assert ctx.outcome.data["os"] and ctx.result.ran == []  # facts only, no round trip of its own


# -- rules as values: argv and `iptables -S` text, never pasted (issue 10 #17, issue 11 #5) ----------------------
def test_rule_value_has_its_argv_and_its_saved_text() -> None:
    spec = service_rule("drbd", "tcp", ["7000:7999"], "10.83.0.4")
    rule = Rule.parse("HIVE-SERVICE", spec)
    assert rule.match[-2:] == ("--comment", "allow drbd") and rule.target == ("-j", "ACCEPT")
    assert rule.spec == spec and rule.save_text() == f"-A HIVE-SERVICE {spec}"
    assert rule.argv("-I", 3)[:5] == ["iptables", "-w", "-I", "HIVE-SERVICE", "3"]
    assert rule.argv("-C")[-4:] == ["--comment", "allow drbd", "-j", "ACCEPT"]
    assert Rule("FORWARD", target=("-j", "REJECT", "--reject-with", "icmp-host-prohibited")).save_text() == (
        f"-A FORWARD {REJECT}")
    for bad in ("-s 10.0.0.1/32 -j ACCEPT; touch /tmp/x", "-s $(reboot) -j ACCEPT", "-j ACCEPT '", "-s 1.2.3.4"):
        with pytest.raises(ValueError):
            Rule.parse("INPUT", bad)
    with pytest.raises(ValueError, match="chain"):
        Rule("IN PUT")
    with pytest.raises(ValueError, match="action"):
        rule.argv("-F")
    with pytest.raises(ValueError, match="not a rule of chain"):
        LiveRules(chain="INPUT", rules=(Rule("FORWARD"),))


def test_live_probe_passes_each_argument_whole_and_runs_no_pasted_text(tmp_path: Path) -> None:
    """The probe run by sh against a stub iptables that records its argv: the comment arrives as ONE argument, and
    rule text with shell syntax never reaches a shell (refused when the value is made)."""
    stub = tmp_path / "iptables"
    stub.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s|" "$a"; done >> "$LOG"; echo >> "$LOG"; exit 1\n')
    stub.chmod(0o755)
    log = tmp_path / "log"
    spec = service_rule("drbd", "tcp", ["7000:7999"], "10.83.0.4")
    probe = LiveRules(chain="HIVE-SERVICE", rules=(spec,)).probe(DEB)
    subprocess.run(["sh", "-c", probe], env={"PATH": f"{tmp_path}:/usr/bin:/bin", "LOG": str(log)}, check=True)
    calls = log.read_text().splitlines()
    assert "-w|-C|HIVE-SERVICE|" + "|".join(Rule.parse("HIVE-SERVICE", spec).argv("-C")[4:]) + "|" in calls
    marker = tmp_path / "pasted"
    with pytest.raises(ValueError, match="not a plain iptables argument"):
        LiveRules(chain="INPUT", rules=(f"-j ACCEPT; touch {marker}",)).probe(DEB)
    assert not marker.exists()


def test_saved_file_block_planned_from_the_real_probe_of_a_real_file(tmp_path: Path) -> None:
    """The shared file probe run by sh on a real rules file (the canned file_out() above cannot drift from it)."""
    path = tmp_path / "rules v4"  # a space in the path, too
    path.write_text(STOCK_WITH_HIVE)
    path.chmod(0o600)
    block = RulesBlock(path=str(path), marker=STRICT_MARKER, lines=saved("INPUT", [ssh_rule("10.83.0.1")]),
                       after=f"-A INPUT {ESTABLISHED}", remove=(f"-A INPUT {SSH_OPEN}",))
    plan = block.plan(CONTROLLER, run_probe(block, CONTROLLER))
    assert not plan.error, plan.error
    assert plan.uploads[0].mode == "0600" and "-A INPUT -s 10.83.0.1/32 -p tcp" in text_of(plan)
    refused = RulesBlock(path=str(path), marker=STRICT_MARKER, lines=saved("INPUT", [ssh_rule("198.51.100.7")]),
                         after=f"-A INPUT {ESTABLISHED}", remove=(f"-A INPUT {SSH_OPEN}",))
    assert "would not accept a NEW ssh login from 10.83.0.1" in refused.plan(
        CONTROLLER, run_probe(refused, CONTROLLER)).error


def test_the_saved_input_path_follows_jumps_into_user_chains() -> None:
    """A drop in HIVE-SERVICE (which INPUT jumps to) cuts us off after the next boot; an accept there lets us in."""
    dropping = STOCK_WITH_HIVE.replace("COMMIT\n", "-A HIVE-SERVICE -s 10.83.0.0/24 -j DROP\nCOMMIT\n")
    chains = {name: rules for name, (rules, _) in saved_chains(dropping).items()}
    addr = ipaddress.ip_address("10.83.0.1")
    assert not admits(chains["INPUT"], addr, 22, "ACCEPT", chains)  # followed: the DROP comes first
    assert admits(chains["INPUT"], addr, 22)  # live view (INPUT only): the jump is passed over
    accepting = LOCKED_FILE.replace("COMMIT\n", "-A HIVE-SERVICE -s 10.83.0.1/32 -p tcp -m tcp --dport 22 -j ACCEPT\n"
                                                "COMMIT\n")
    chains = {name: rules for name, (rules, _) in saved_chains(accepting).items()}
    assert admits(chains["INPUT"], addr, 22, "ACCEPT", chains)
    returning = LOCKED_FILE.replace("COMMIT\n", "-A HIVE-SERVICE -j RETURN\nCOMMIT\n")
    chains = {name: rules for name, (rules, _) in saved_chains(returning).items()}
    assert not admits(chains["INPUT"], addr, 22, "ACCEPT", chains)
    # a rule set that would add the DROP to the saved file is refused
    block = RulesBlock(path=rules_path(DEB), marker="# {mark} HIVE-BUILDER MANAGED BLOCK for x",
                       lines=("-A HIVE-SERVICE -s 10.83.0.0/24 -j DROP",), after=HIVE_END, require_anchor=True)
    assert "would not accept a NEW ssh login from 10.83.0.1" in block.plan(CONTROLLER, file_out(STOCK_WITH_HIVE)).error
