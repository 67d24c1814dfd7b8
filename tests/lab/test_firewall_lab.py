"""Firewall on real hosts: HIVE-SERVICE rule sets, strict ssh sources (all of them), internal network.

The controller reaches the lab hosts through docker's published 127.0.0.1 ports, so on the hosts its SSH
traffic arrives from the stage network's gateway, 10.83.0.1. That address MUST be in hive_ssh_source_ips
here, or the strict rules would lock the test out (the task refuses in that case; see the last test).
"""

from __future__ import annotations

import base64

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


# Issue 10 #6 and #8, this helper's sites (lk1, lk2): a refusal happens before any change, and the saved file
# is held to the live rules' test (it must admit our next login).
LK1, LK1_CIDR, LK1_GATEWAY = "lk1", "10.130.0.0/24", "10.130.0.1"
LK2, LK2_CIDR, LK2_GATEWAY = "lk2", "10.131.0.0/24", "10.131.0.1"


def set_host_vars(lab, host: str, text: str) -> None:  # type: ignore[no-untyped-def]
    """The site's per-host values, as an operator edits them between runs."""
    (lab.root / "inventory" / "host_vars").mkdir(exist_ok=True)
    (lab.root / "inventory" / "host_vars" / f"{host}.yml").write_text(text)


def boot_restore_then_login(lab, host: str) -> bool:  # type: ignore[no-untyped-def]
    """What the next boot does (netfilter-persistent loads rules.v4), then a NEW ssh login through it."""
    rc, out = lab.docker_exec(host, f"iptables-restore < {RULES}")
    assert rc == 0, out
    return fresh_login_works(lab, host)


def test_sources_excluding_us_change_nothing_and_the_saved_file_keeps_admitting_us(make_lab) -> None:  # type: ignore[no-untyped-def]
    """A host set up without sources, then hive_ssh_source_ips without the controller's address: every step that
    reads them refuses before any change; rules.v4, loaded as at boot, still lets a fresh login in."""
    lab = make_lab(LK1, LK1_CIDR, 1, separate=False)
    [host] = lab.hosts
    hive = Hive(lab.root, stage="private")
    first = hive.run(RUNBOOK)
    assert first.exit_code == EXIT_OK, first.text()
    before = snapshot(lab, host)
    set_host_vars(lab, host, 'hive_ssh_source_ips: ["198.51.100.7"]\n')
    # the run (`setup-hosts -T strict-source-ip`: strict-source-ip, then sshd), the firewall steps in
    # order, and the whole phase (its first step, ssh-connection, refuses)
    for book, tags, step in (("setup-hosts", ["strict-source-ip"], "strict-source-ip"),
                             (RUNBOOK, None, "iptables"), ("setup-hosts", None, "ssh-connection")):
        report = hive.run(book, tags=tags)
        failed = [o for o in report.outcomes if o.status == FAILED]
        assert [o.step for o in failed] == [step], report.text()
        assert "refused, nothing changed" in failed[0].error and f"comes from {LK1_GATEWAY}" in failed[0].error
        assert report.changed == 0, report.changes()
        assert snapshot(lab, host) == before  # live rules and rules.v4 byte for byte
    assert boot_restore_then_login(lab, host)


def test_removing_the_sources_repairs_a_saved_file_that_locks_us_out(make_lab) -> None:  # type: ignore[no-untyped-def]
    """The file the old strict-source-ip left (only 198.51.100.7 may log in, the open ssh rule gone): a run
    without hive_ssh_source_ips puts the open rule back and drops the block; the next boot lets us in."""
    lab = make_lab(LK1, LK1_CIDR, 1, separate=False)
    [host] = lab.hosts
    hive = Hive(lab.root, stage="private")
    assert hive.run(RUNBOOK).exit_code == EXIT_OK
    good = lab.docker_exec(host, f"cat {RULES}")[1]
    open_ssh = "-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT\n"
    established = "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n"
    block = ("# BEGIN HIVE-BUILDER MANAGED BLOCK for SSH SOURCE IP STRICT\n-A INPUT -s 198.51.100.7/32 -p tcp -m state "
             "--state NEW -m multiport --dports 22 -m limit --limit 5/sec --limit-burst 20 -j ACCEPT\n"
             "# END HIVE-BUILDER MANAGED BLOCK for SSH SOURCE IP STRICT\n")
    assert open_ssh in good and established in good
    locked = good.replace(open_ssh, "").replace(established, established + block)
    data = base64.b64encode(locked.encode()).decode()
    assert lab.docker_exec(host, f"echo {data} | base64 -d > {RULES}")[0] == 0

    report = hive.run(RUNBOOK)
    assert report.exit_code == EXIT_OK, report.text()
    saved = lab.docker_exec(host, f"cat {RULES}")[1]
    assert "SSH SOURCE IP STRICT" not in saved and "198.51.100.7" not in saved and open_ssh in saved
    assert lab.docker_exec(host, f"iptables-restore --test {RULES}")[0] == 0
    assert boot_restore_then_login(lab, host)
    assert hive.run(RUNBOOK).changed == 0


def test_a_refused_sshd_port_leaves_no_rule_behind(make_lab) -> None:  # type: ignore[no-untyped-def]
    """hive_sshd_port 2222 while the controller's logins arrive on 22 (docker publishes the container's 22): the
    sshd step refuses the move, so no step may open 2222 first, live or saved."""
    lab = make_lab(LK2, LK2_CIDR, 1, separate=False,
                   group_vars=f'hive_sshd_port: 2222\nhive_ssh_source_ips: ["{LK2_GATEWAY}"]\n')
    [host] = lab.hosts
    hive = Hive(lab.root, stage="private")
    before = snapshot(lab, host)
    for tags, step in ((["iptables", "strict-source-ip", "sshd"], "iptables"), (["strict-source-ip"],
                       "strict-source-ip"), (["sshd"], "sshd"), (None, "ssh-connection")):
        report = hive.run("setup-hosts", tags=tags)
        failed = [o for o in report.outcomes if o.status == FAILED]
        assert [o.step for o in failed] == [step], report.text()
        assert "nothing changed" in failed[0].error and "Port 2222" in failed[0].error, failed[0].error
        assert report.changed == 0, report.changes()
        live_and_saved = snapshot(lab, host)
        assert "2222" not in live_and_saved and live_and_saved == before
    assert lab.docker_exec(host, "ss -Hltn 'sport = :22' | wc -l")[1].strip() != "0"  # sshd still on 22
    assert fresh_login_works(lab, host)
