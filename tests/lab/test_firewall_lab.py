"""Firewall on real hosts: HIVE-SERVICE rule sets, strict ssh sources (all of them), internal network.

The controller reaches the lab hosts through docker's published 127.0.0.1 ports, so on the hosts its SSH
traffic arrives from the stage network's gateway, 10.83.0.1. That address MUST be in hive_ssh_source_ips
here, or the strict rules would lock the test out (the task refuses in that case; see the last test).
"""

from __future__ import annotations

import pytest

from hive_nornir.api import Hive
from hive_nornir.engine.context import HostContext
from hive_nornir.engine.outcome import FAILED
from hive_nornir.engine.runbook import Runbook, Step
from hive_nornir.report.run_report import EXIT_OK
from hive_nornir.tasks.net.firewall import rule_set_for
from hive_nornir.tasks.net.internal_network import internal_network
from hive_nornir.tasks.net.iptables import iptables
from hive_nornir.tasks.ssh.strict_source_ip import strict_source_ip

pytestmark = pytest.mark.lab

NAME, CIDR, GATEWAY = "hfw", "10.83.0.0/24", "10.83.0.1"
RULES = "/etc/iptables/rules.v4"
REJECT = "-j REJECT --reject-with icmp-host-prohibited"


def allow_sets(ctx: HostContext) -> None:
    """What the drbd and docker tasks do: open their rule sets to every server."""
    ctx.ensure([*rule_set_for(ctx, "drbd"), *rule_set_for(ctx, "docker_swarm_udp")])


RUNBOOK = Runbook("firewall-lab", (
    Step("iptables", iptables, tags=("iptables",)),
    Step("internal-network", internal_network, when=lambda h: bool(h.get("hive_internal_net_if"))),
    Step("strict-source-ip", strict_source_ip, when=lambda h: bool(h.get("hive_ssh_source_ips"))),
    Step("rule-sets", allow_sets),
))


def snapshot(lab, host: str) -> str:  # type: ignore[no-untyped-def]
    """Live rules and the saved file, observed via docker exec."""
    return lab.docker_exec(host, f"iptables -S; cat {RULES} 2>&1")[1]


def fresh_login_works(lab, host: str) -> bool:  # type: ignore[no-untyped-def]
    """A NEW ssh connection through the firewall runs a command (the old session surviving is not enough)."""
    client = lab.ssh(host)
    try:
        _, out, _ = client.exec_command("echo still-here")
        return out.read().decode().strip() == "still-here"
    finally:
        client.close()


def test_rule_sets_and_strict_ssh_sources(make_lab) -> None:  # type: ignore[no-untyped-def]
    lab = make_lab(NAME, CIDR, 2, group_vars=f'hive_ssh_source_ips: ["{GATEWAY}", "198.51.100.7"]\n')
    hive = Hive(lab.root, stage="private")
    ips = [lab.state["hosts"][h]["private_ip"] for h in lab.hosts]
    for host in lab.hosts:  # chains another owner (dockerd) put in the live table: no flush/restore may drop them
        lab.docker_exec(host, "iptables -N DOCKER-USER && iptables -A DOCKER-USER -j RETURN && "
                              "iptables -I FORWARD -j DOCKER-USER")
    before = {h: snapshot(lab, h) for h in lab.hosts}

    check = hive.run(RUNBOOK, check=True)
    assert check.exit_code == EXIT_OK, check.text()
    assert check.changed > 0 and {h: snapshot(lab, h) for h in lab.hosts} == before

    first = hive.run(RUNBOOK)
    assert first.exit_code == EXIT_OK, first.text()
    for host in lab.hosts:
        live = lab.docker_exec(host, "iptables -S")[1].splitlines()
        saved = lab.docker_exec(host, f"cat {RULES}")[1].splitlines()
        assert lab.docker_exec(host, f"iptables-restore --test {RULES}")[0] == 0
        for ip in ips:  # one rule per source, every server, live and saved
            drbd = (f"-A HIVE-SERVICE -s {ip}/32 -p tcp -m multiport --dports 7000:7999 -m conntrack --ctstate NEW "
                    f'-m comment --comment "allow drbd" -j ACCEPT')
            udp = (f"-A HIVE-SERVICE -s {ip}/32 -p udp -m multiport --dports 7946,4789 -m conntrack --ctstate NEW "
                   f'-m comment --comment "allow docker_swarm_udp" -j ACCEPT')
            assert drbd in live and udp in live and drbd in saved and udp in saved
        for src in (GATEWAY, "198.51.100.7"):  # BOTH strict sources (hive-builder kept only the last in the file)
            ssh = (f"-A INPUT -s {src}/32 -p tcp -m state --state NEW -m multiport --dports 22 "
                   f"-m limit --limit 5/sec --limit-burst 20 -j ACCEPT")
            assert ssh in live and ssh in saved
        open_ssh = "-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT"
        assert open_ssh not in live and open_ssh not in saved
        inputs = [r for r in live if r.startswith("-A INPUT")]
        assert inputs[0] == "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT"
        assert inputs[-1] == "-A INPUT -j REJECT --reject-with icmp-host-prohibited"
        assert "-A INPUT -j HIVE-SERVICE" in inputs and "-N HIVE-SERVICE" in saved
        assert lab.docker_exec(host, "systemctl is-enabled netfilter-persistent")[1].strip() == "enabled"
        assert fresh_login_works(lab, host)
        assert "-A FORWARD -j DOCKER-USER" in live and "-A DOCKER-USER -j RETURN" in live
        assert live.index("-A FORWARD -j DOCKER-USER") < live.index(f"-A FORWARD {REJECT}")
        assert "-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT" in lab.docker_exec(host, "iptables -t nat -S")[1]
    # another server is not an ssh source: its NEW connection to sshd is rejected, the rule set port is open
    other_ip = ips[0]
    rc, _ = lab.docker_exec(lab.hosts[1], f"timeout 5 bash -c '</dev/tcp/{other_ip}/22'")
    assert rc != 0

    second = hive.run(RUNBOOK)
    assert second.exit_code == EXIT_OK, second.text()
    assert second.changed == 0, second.changes()
    assert hive.run(RUNBOOK, check=True).changed == 0
    # the boot path: what netfilter-persistent restores is what runs now (same rule lines)
    for host in lab.hosts:
        rc, out = lab.docker_exec(host, f"iptables-save -t filter | grep '^-A' | grep -v DOCKER-USER | sort > /tmp/a; "
                                        f"grep '^-A' {RULES} | sort > /tmp/b; diff /tmp/a /tmp/b")
        assert rc == 0, out


def test_strict_sources_refuse_to_lock_out_the_controller(make_lab) -> None:  # type: ignore[no-untyped-def]
    lab = make_lab(NAME, CIDR, 1, separate=False, group_vars='hive_ssh_source_ips: ["198.51.100.7"]\n')
    hive = Hive(lab.root, stage="private")
    report = hive.run(RUNBOOK)
    [host] = lab.hosts
    failed = [o for o in report.outcomes if o.status == FAILED]
    assert [o.step for o in failed] == ["iptables"], report.text()
    assert f"comes from {GATEWAY}" in failed[0].error
    assert "-A INPUT -j REJECT" not in lab.docker_exec(host, "iptables -S")[1]
    assert fresh_login_works(lab, host)


def test_internal_network_accepts_the_internal_net(make_lab) -> None:  # type: ignore[no-untyped-def]
    # the lab has one NIC; it already carries the private IP, so nothing is brought up (ifup is guarded)
    lab = make_lab(NAME, CIDR, 1, separate=False, group_vars=(
        "hive_internal_net_if: eth0\nhive_internal_net_addr: 10.83.0.0\nhive_internal_net_cidr: 24\n"))
    hive = Hive(lab.root, stage="private")
    first = hive.run(RUNBOOK)
    assert first.exit_code == EXIT_OK, first.text()
    [host] = lab.hosts
    ip = lab.state["hosts"][host]["private_ip"]
    live = lab.docker_exec(host, "iptables -S")[1].splitlines()
    saved = lab.docker_exec(host, f"cat {RULES}")[1].splitlines()
    rule = "-A INPUT -s 10.83.0.0/24 -i eth0 -m state --state NEW -j ACCEPT"
    assert rule in live and rule in saved
    icmp = saved.index("-A INPUT -p icmp -j ACCEPT")  # the block (marker, rule) follows the icmp rule
    assert saved[icmp + 1:icmp + 3] == ["# BEGIN ANSIBLE MANAGED BLOCK INPUT", rule]
    # with an internal network, rule sets use it as their only source
    assert ('-A HIVE-SERVICE -s 10.83.0.0/24 -p tcp -m multiport --dports 7000:7999 -m conntrack --ctstate NEW '
            '-m comment --comment "allow drbd" -j ACCEPT') in live
    stanza = lab.docker_exec(host, "cat /etc/network/interfaces.d/internal_net")[1]
    assert f"iface eth0 inet static\n    address {ip}/24" in stanza
    assert fresh_login_works(lab, host)
    second = hive.run(RUNBOOK)
    assert second.changed == 0, second.changes()


SAFE_NAME, SAFE_CIDR, SAFE_GATEWAY = "hsafe", "10.92.0.0/24", "10.92.0.1"


def test_sshd_port_move_keeps_the_session_port_open(make_lab) -> None:  # type: ignore[no-untyped-def]
    """hive_sshd_port 2222 with strict sources, while the controller's logins arrive on 22 (docker publishes the
    container's 22): the rule sets cover 22 and 2222, sshd refuses the Port change, and new logins still work."""
    lab = make_lab(SAFE_NAME, SAFE_CIDR, 1, separate=False,
                   group_vars=f'hive_sshd_port: 2222\nhive_ssh_source_ips: ["{SAFE_GATEWAY}"]\n')
    [host] = lab.hosts
    hive = Hive(lab.root, stage="private")
    tags = ["iptables", "strict-source-ip", "sshd"]

    first = hive.run("setup-hosts", tags=tags)
    by_step = {o.step: o for o in first.outcomes}
    assert set(by_step) == {"iptables", "strict-source-ip", "sshd"}, first.text()
    assert by_step["iptables"].status != FAILED and by_step["strict-source-ip"].status != FAILED, first.text()
    assert by_step["sshd"].status == FAILED  # sshd keeps port 22: the controller cannot reach 2222
    assert "nothing changed" in by_step["sshd"].error and "Port 2222" in by_step["sshd"].error
    live = lab.docker_exec(host, "iptables -S INPUT")[1].splitlines()
    saved = lab.docker_exec(host, f"cat {RULES}")[1].splitlines()
    for port in (22, 2222):
        ssh = (f"-A INPUT -s {SAFE_GATEWAY}/32 -p tcp -m state --state NEW -m multiport --dports {port} "
               f"-m limit --limit 5/sec --limit-burst 20 -j ACCEPT")
        assert ssh in live and ssh in saved, (live, saved)
    assert "-A INPUT -j REJECT --reject-with icmp-host-prohibited" in live
    assert lab.docker_exec(host, "ss -Hltn 'sport = :22' | wc -l")[1].strip() != "0"  # sshd still on 22
    assert fresh_login_works(lab, host)

    second = hive.run("setup-hosts", tags=tags)
    assert second.changed == 0, second.changes()
    assert [o.step for o in second.outcomes if o.status == FAILED] == ["sshd"], second.text()
    assert lab.docker_exec(host, "iptables -S INPUT")[1].splitlines() == live
    assert hive.run("setup-hosts", tags=tags, check=True).changed == 0
    assert fresh_login_works(lab, host)
