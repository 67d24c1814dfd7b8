"""keepalived VIP on real hosts: 2 and then 3 members, real VRRP (unicast) and real failover.

One 4-host lab (site clus, 10.170.0.0/24): p-hive0..2 are keepalived members, p-hive3 (the repository) is the
third host that pings the VIP and reads its neighbour entry. Every VIP check is `ip -o -4 addr` inside every host
(docker exec: observation only, not the product's path). The failover time is printed, never asserted (the
benchmark, benchmarks/bench_failover.py, measures it).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Lab, own_lab

from hive_nornir.api import Hive
from hive_nornir.engine.outcome import FAILED
from hive_nornir.primitives.packages import Packages
from hive_nornir.report.run_report import EXIT_FAILED, EXIT_OK
from hive_nornir.runbooks.cluster import FAILOVER, RUNBOOK

pytestmark = pytest.mark.lab

SITE, CIDR = "clus", "10.170.0.0/24"
H0, H1, H2, OBS = (f"p-hive{n}.{SITE}" for n in range(4))
VIP = "10.170.0.200"
CONF = "/etc/keepalived/keepalived.conf"


def site_vars(hosts: list[str], options: str = "") -> str:
    """group_vars/all.yml: one VRRP instance over `hosts`, the observer for the failover step."""
    listed = ", ".join(hosts)
    return (f"hive_keepalived:\n  instances:\n    VI_CLUS:\n      interface: eth0\n      virtual_router_id: 61\n"
            f"      virtual_ipaddress: [{VIP}/24]\n      hosts: [{listed}]\n      auth_pass: clus1\n"
            f"{options}"
            f"hive_vip_failover:\n  observer: {OBS}\n  timeout: 20\n")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The module's 4 hosts (3 hives + repository)."""
    with own_lab(tmp_path_factory.mktemp(SITE), SITE, CIDR, 4) as lab:
        yield lab


def write_vars(lab: Lab, text: str) -> Hive:
    """Rewrite the site's group_vars and load it again."""
    gv = Path(lab.root) / "inventory" / "group_vars"
    gv.mkdir(exist_ok=True)
    (gv / "all.yml").write_text(text)
    return Hive(lab.root, stage="private")


def vip_hosts(lab: Lab) -> list[str]:
    """Which hosts hold the VIP now, by `ip -o -4 addr` on every host."""
    out = []
    for host in lab.hosts:
        _, text = lab.docker_exec(host, "ip -o -4 addr show")
        if re.search(rf"\binet {re.escape(VIP)}/24\b", text):
            out.append(host)
    return out


def conf_hash(lab: Lab, host: str) -> str:
    """md5 of the live keepalived.conf and the directory listing (a refused candidate must leave both)."""
    return lab.docker_exec(host, f"md5sum {CONF}; ls -a /etc/keepalived")[1]


def journal_since(lab: Lab, host: str, since: float) -> str:
    """keepalived's log on a host since an epoch time."""
    return lab.docker_exec(host, f"journalctl -u keepalived --since=@{int(since)} -o cat --no-pager")[1]


def failover_data(report: Any) -> dict[str, Any]:
    """The failover step's record (from the instance's first host)."""
    found = [o.data["failover"]["VI_CLUS"] for o in report.outcomes if "failover" in o.data]
    assert len(found) == 1, report.text()
    return dict(found[0])


def observer_sees(lab: Lab, host: str) -> None:
    """The third host pings the VIP and its neighbour entry is `host`'s MAC (gratuitous ARP moved it)."""
    rc, out = lab.docker_exec(OBS, f"ping -c 1 -W 2 {VIP}")
    assert rc == 0, out
    mac = lab.docker_exec(host, "cat /sys/class/net/eth0/address")[1].strip()
    _, neigh = lab.docker_exec(OBS, f"ip neigh show {VIP}")
    assert f"lladdr {mac}" in neigh, (neigh, mac)


def test_two_hosts_vip_failover_and_no_change(lab: Lab) -> None:
    hive = write_vars(lab, site_vars([H0, H1]))
    assert hive.run_task([Packages(names=["iputils-ping"])], limit=OBS).exit_code == EXIT_OK

    check = hive.run(RUNBOOK, check=True)
    assert check.exit_code == EXIT_OK, check.text()
    assert {h for h, *_ in check.changes()} == {H0, H1}
    assert lab.docker_exec(H0, "dpkg -s keepalived")[0] != 0  # check mode installed nothing

    first = hive.run(RUNBOOK)
    assert first.exit_code == EXIT_OK, first.text()
    # all BACKUP + nopreempt: the first to time out its master-down timer wins, whatever its priority
    holders = vip_hosts(lab)
    assert len(holders) == 1 and holders[0] in (H0, H1), holders
    master, backup = holders[0], (H1 if holders[0] == H0 else H0)
    gate = [o.data["vip"]["VI_CLUS"] for o in first.outcomes if "vip" in o.data]
    assert gate == [{"vip": [f"{VIP}/24"], "master": master, "states": {master: "MASTER", backup: "BACKUP"}}]
    _, text = lab.docker_exec(H1, f"cat {CONF}; stat -c %a {CONF}")
    assert "state BACKUP\n    nopreempt\n" in text and "unicast_peer {\n        10.170.0.4\n    }" in text, text
    assert text.rstrip().endswith("640"), text
    observer_sees(lab, master)

    second = hive.run(RUNBOOK)
    assert second.exit_code == EXIT_OK and second.changed == 0, second.changes()

    pid_before = lab.docker_exec(backup, "systemctl show -p MainPID --value keepalived")[1]
    t_start = time.time()
    moved = hive.run(FAILOVER)
    assert moved.exit_code == EXIT_OK, moved.text()
    data = failover_data(moved)
    assert (data["from"], data["to"], data["old_master_state"]) == (master, backup, "BACKUP"), data
    assert vip_hosts(lab) == [backup]  # moved, and the old master did not take it back (nopreempt)
    observer_sees(lab, backup)
    log = journal_since(lab, master, t_start)
    assert "Entering BACKUP STATE" in log and "Entering MASTER STATE" not in log, log
    assert lab.docker_exec(backup, "systemctl show -p MainPID --value keepalived")[1] == pid_before
    print(f"2-host failover {master} -> {backup}: {data['seconds']:.3f} s (stop sent -> VIP seen on the new master)")

    again = hive.run(RUNBOOK)
    assert again.exit_code == EXIT_OK and again.changed == 0, again.changes()
    assert vip_hosts(lab) == [backup]


def test_rejected_candidate_leaves_the_live_file(lab: Lab) -> None:
    """An unknown keyword: `keepalived -t -f CANDIDATE` refuses it; nothing live moves."""
    [holder] = vip_hosts(lab)
    before = {h: conf_hash(lab, h) for h in (H0, H1)}
    pids = {h: lab.docker_exec(h, "systemctl show -p MainPID --value keepalived")[1] for h in (H0, H1)}
    hive = write_vars(lab, site_vars([H0, H1], options="      options: {advert_intt: 1}\n"))
    report = hive.run(RUNBOOK)
    assert report.exit_code == EXIT_FAILED, report.text()
    failed = {o.host: o.error for o in report.outcomes if o.status == FAILED}
    assert set(failed) == {H0, H1}, failed
    for error in failed.values():
        assert "keepalived rejects the candidate keepalived.conf (nothing changed)" in error, error
        assert "Unknown keyword 'advert_intt'" in error, error
    assert {h: conf_hash(lab, h) for h in (H0, H1)} == before
    assert {h: lab.docker_exec(h, "systemctl show -p MainPID --value keepalived")[1] for h in (H0, H1)} == pids
    assert vip_hosts(lab) == [holder]


def test_three_hosts_vip_failover(lab: Lab) -> None:
    [holder] = vip_hosts(lab)
    hive = write_vars(lab, site_vars([H0, H1, H2]))
    first = hive.run(RUNBOOK)
    assert first.exit_code == EXIT_OK, first.text()
    assert {h for h, *_ in first.changes()} == {H0, H1, H2}  # a new peer for the two, a new member
    assert vip_hosts(lab) == [holder]  # the reload kept the master (no flapping)
    gate = [o.data["vip"]["VI_CLUS"] for o in first.outcomes if "vip" in o.data]
    assert gate[0]["states"] == {h: "MASTER" if h == holder else "BACKUP" for h in (H0, H1, H2)}, gate
    assert hive.run(RUNBOOK).changed == 0

    t_start = time.time()
    moved = hive.run(FAILOVER)
    assert moved.exit_code == EXIT_OK, moved.text()
    data = failover_data(moved)
    assert data["from"] == holder and data["to"] in {H0, H1, H2} - {holder}, data
    assert data["old_master_state"] == "BACKUP", data
    assert vip_hosts(lab) == [data["to"]]
    observer_sees(lab, data["to"])
    log = journal_since(lab, holder, t_start)
    assert "Entering BACKUP STATE" in log and "Entering MASTER STATE" not in log, log
    print(f"3-host failover {holder} -> {data['to']}: {data['seconds']:.3f} s")
    again = hive.run(RUNBOOK)
    assert again.exit_code == EXIT_OK and again.changed == 0, again.changes()
