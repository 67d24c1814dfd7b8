"""follow-swarm-service on a real 3-hive swarm: a service's HIVE_VIP and HIVE_MARK follow its task between nodes.

The hives get setup-hosts' own steps (certificates, firewall, venv, docker, this daemon, swarm) through the API.
Stand-in: no image can be pulled here, so each hive imports a one-binary image (Debian's busybox-static) for the
service's task. The controller never dials the VIP: every observation is `docker exec` inside the hosts, and the
VIP's DNAT/SNAT are exercised between hives (busybox wget/httpd; its `wget -T` segfaults, so `timeout`).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from conftest import Lab, own_lab

from hive_nornir.api import Hive
from hive_nornir.engine.outcome import CHANGED
from hive_nornir.engine.runbook import Runbook
from hive_nornir.report.run_report import EXIT_OK
from hive_nornir.runbooks.setup_hosts import RUNBOOK as SETUP_HOSTS

pytestmark = pytest.mark.lab

NAME, CIDR = "hfollow", "10.97.0.0/24"
VIP = "10.97.0.250"  # inside the stage network, far above the addresses docker hands the 3 hosts
STEPS = ("ssh-connection", "tls-certificate", "iptables", "pip-venv", "docker", "follow-swarm-service",
         "swarm-init", "swarm-join")
PHASE = Runbook("setup-hosts", tuple(s for s in SETUP_HOSTS.steps if s.name in STEPS))
IMAGE = "follow-test:1"
SERVICE = "follow-vip"
MAKE_IMAGE = (
    "set -e; command -v busybox >/dev/null || { apt-get update -qq && "
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null; }; "
    "d=$(mktemp -d); mkdir $d/bin $d/www; cp $(command -v busybox) $d/bin/busybox; echo follow > $d/www/index.html; "
    f"tar -C $d -c . | docker import - {IMAGE} >/dev/null; rm -rf $d"
)


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """3 hives (p-hive0 is also the repository), set up once for every test here."""
    with own_lab(tmp_path_factory.mktemp(NAME), NAME, CIDR, 3, separate=False,
                 group_vars="hive_venv_pip_packages: []   # lab hosts have no PyPI\n") as lab:
        yield lab


@pytest.fixture(scope="module")
def hive(stage: Lab) -> Hive:
    """The steps ran once (the swarm exists, the daemon runs) and every hive has the test image."""
    hive = Hive(stage.root, stage="private")
    t0 = time.monotonic()
    report = hive.run(PHASE)
    print(f"setup: {time.monotonic() - t0:.1f} s")
    assert report.exit_code == EXIT_OK, report.text()
    follow = [o for o in report.outcomes if o.step == "follow-swarm-service"]
    assert sorted(o.host for o in follow) == sorted(stage.hosts) and all(o.status == CHANGED for o in follow)
    for host in stage.hosts:
        sh(stage, host, MAKE_IMAGE)
    return hive


def sh(lab: Lab, host: str, cmd: str) -> str:
    rc, out = lab.docker_exec(host, cmd, timeout=300)
    assert rc == 0, (host, cmd, out)
    return out


def short(host: str) -> str:
    return host.split(".")[0]


def vip_holders(lab: Lab) -> dict[str, list[str]]:
    """Host -> the `ip -o addr` lines that carry the VIP (observed inside each host)."""
    return {h: [line for line in sh(lab, h, "ip -o addr show").splitlines() if f" {VIP}/" in line]
            for h in lab.hosts}


def marked(lab: Lab) -> list[str]:
    """Nodes whose label follow=true is set, as the swarm sees it."""
    out = sh(lab, lab.hosts[0], "docker node ls -q | xargs docker node inspect")
    return sorted(n["Description"]["Hostname"] for n in json.loads(out)
                  if (n["Spec"].get("Labels") or {}).get("follow") == "true")


def wait_for(what: str, check: Callable[[], bool], tries: int = 60, pause: float = 1.0) -> None:
    """Bounded wait: at most `tries` looks, `pause` seconds apart."""
    for _ in range(tries):
        if check():
            return
        time.sleep(pause)
    raise AssertionError(f"not reached after {tries} tries: {what}")


def only_on(lab: Lab, host: str) -> bool:
    """The VIP is on host's stage NIC (eth0, the 10.97.0.x one) with the stage prefix, and nowhere else."""
    holders = vip_holders(lab)
    mine = holders.pop(host)
    return len(mine) == 1 and " eth0 " in mine[0] and f"{VIP}/24" in mine[0] and not any(holders.values())


def test_daemon_runs_on_every_hive_from_the_admins_venv(stage: Lab, hive: Hive) -> None:
    for host in stage.hosts:
        assert sh(stage, host, "systemctl is-enabled follow-swarm-service; systemctl is-active follow-swarm-service"
                  ).split() == ["enabled", "active"]
        cmd = sh(stage, host, "ps -o args= -p $(systemctl show -p MainPID --value follow-swarm-service)")
        assert cmd.strip() == "/home/admin/docker/bin/python /usr/lib/follow-swarm-service.py"
        assert "arping" in sh(stage, host, "dpkg -S $(command -v arping)")


def test_vip_and_mark_follow_the_task_and_go_when_the_service_goes(stage: Lab, hive: Hive) -> None:
    one, two = sorted(stage.hosts)[1:3]
    boss = sorted(stage.hosts)[0]
    t0 = time.monotonic()
    sh(stage, boss, f"docker service create --detach --name {SERVICE} --label HIVE_VIP={VIP} "
                    f"--label HIVE_MARK=follow --constraint node.hostname=={short(one)} --no-resolve-image "
                    f"{IMAGE} /bin/busybox sleep 86400")
    wait_for(f"VIP on {one} only", lambda: only_on(stage, one))
    wait_for(f"follow=true on {one} only", lambda: marked(stage) == [short(one)])
    print(f"VIP and label on {one}: {time.monotonic() - t0:.1f} s")
    journal = sh(stage, one, "journalctl -u follow-swarm-service --no-pager -o cat")
    assert f"add VIP {VIP}/24 on eth0" in journal and "arping" not in journal  # no arping complaint

    sh(stage, boss, f"docker service update --detach --constraint-rm node.hostname=={short(one)} "
                    f"--constraint-add node.hostname=={short(two)} {SERVICE}")
    wait_for(f"VIP moved to {two}", lambda: only_on(stage, two))
    wait_for(f"follow=true moved to {two}", lambda: marked(stage) == [short(two)])

    sh(stage, boss, f"docker service rm {SERVICE}")
    wait_for("VIP gone everywhere", lambda: not any(vip_holders(stage).values()))
    wait_for("label gone everywhere", lambda: marked(stage) == [])
    labels = json.loads(sh(stage, boss, f"docker node inspect {short(two)} --format '{{{{json .Spec.Labels}}}}'"))
    assert labels.get("hives") == "true"  # the swarm step's labels stay


def test_a_restarted_daemon_takes_back_what_left_while_it_was_down(stage: Lab, hive: Hive) -> None:
    """Reconcile at start: the service goes away while the daemon is stopped; its start removes VIP and label."""
    one, boss = sorted(stage.hosts)[1], sorted(stage.hosts)[0]
    sh(stage, boss, f"docker service create --detach --name {SERVICE} --label HIVE_VIP={VIP} "
                    f"--label HIVE_MARK=follow --constraint node.hostname=={short(one)} --no-resolve-image "
                    f"{IMAGE} /bin/busybox sleep 86400")
    wait_for(f"VIP on {one} only", lambda: only_on(stage, one))
    wait_for(f"follow=true on {one}", lambda: marked(stage) == [short(one)])
    sh(stage, one, "systemctl stop follow-swarm-service")
    sh(stage, boss, f"docker service rm {SERVICE}")
    wait_for("task container gone", lambda: sh(stage, one, "docker ps -q --filter label=com.docker.swarm.service.name="
                                                           f"{SERVICE}").strip() == "")
    assert vip_holders(stage)[one] and marked(stage) == [short(one)]  # nobody took them back yet
    sh(stage, one, "systemctl start follow-swarm-service")
    wait_for("VIP gone after the restart", lambda: not any(vip_holders(stage).values()))
    wait_for("label gone after the restart", lambda: marked(stage) == [])


def test_second_run_and_check_mode_change_nothing(stage: Lab, hive: Hive) -> None:
    t0 = time.monotonic()
    report = hive.run(PHASE, tags=["follow-swarm-service"])
    print(f"second run of the step: {time.monotonic() - t0:.1f} s")
    assert report.exit_code == EXIT_OK, report.text()
    assert report.changed == 0, report.changes()
    assert {o.host for o in report.outcomes} == set(stage.hosts)
    assert hive.run(PHASE, tags=["follow-swarm-service"], check=True).changed == 0


def task_container(lab: Lab, host: str, service: str) -> str:
    return sh(lab, host, f"docker ps -q --filter label=com.docker.swarm.service.name={service}").strip()


def our_rules(lab: Lab, host: str) -> list[str]:
    out = sh(lab, host, "iptables -t nat -S DOCKER; iptables -S DOCKER; iptables -t nat -S POSTROUTING")
    return [line for line in out.splitlines() if "hive-follow:" in line]


def test_dnat_and_snat_work_between_hives_and_go_with_docker(stage: Lab, hive: Hive) -> None:
    """HIVE_DNAT_PORTS: another hive reaches the task at VIP:8080. HIVE_ENABLE_VIP_SNAT: the task's own connection
    arrives from the VIP. Docker stopped: VIP and rules go at once; docker back: the task and all of it return."""
    boss, one, two = sorted(stage.hosts)
    two_ip = stage.state["hosts"][two]["private_ip"]
    sh(stage, boss, "docker network inspect follownet >/dev/null 2>&1 || docker network create -d overlay follownet")
    sh(stage, boss, f"docker service create --detach --name follow-nat --network follownet --label HIVE_VIP={VIP} "
                    "--label HIVE_DNAT_PORTS=8080 --label HIVE_ENABLE_VIP_SNAT=true "
                    f"--constraint node.hostname=={short(one)} --no-resolve-image "
                    f"{IMAGE} /bin/busybox httpd -f -p 8080 -h /www")
    wait_for(f"VIP on {one} only", lambda: only_on(stage, one))
    wait_for("three NAT rules", lambda: len(our_rules(stage, one)) == 3)
    rules = our_rules(stage, one)
    assert any("-j DNAT" in r and f"-d {VIP}/32" in r and "--dport 8080" in r for r in rules), rules
    assert any(f"-j SNAT --to-source {VIP}" in r and "-o eth0" in r for r in rules), rules
    assert sh(stage, two, f"timeout 10 busybox wget -q -O - http://{VIP}:8080/").strip() == "follow"

    # SNAT: a test-only listener on `two` (its firewall opened for the port) logs who connects
    sh(stage, two, "iptables -I INPUT -p tcp --dport 8081 -j ACCEPT; mkdir -p /tmp/snat; echo snat > "
                   "/tmp/snat/index.html; (setsid busybox httpd -f -v -p 8081 -h /tmp/snat >/tmp/httpd.log 2>&1 &)")
    try:
        cid = task_container(stage, one, "follow-nat")
        assert sh(stage, one, f"docker exec {cid} /bin/busybox wget -q -O - http://{two_ip}:8081/"
                  ).strip() == "snat"
        wait_for("the request logged", lambda: VIP in sh(stage, two, "cat /tmp/httpd.log"), tries=10)
    finally:
        stage.docker_exec(two, "pkill -f 'httpd -f -v -p 8081'; iptables -D INPUT -p tcp --dport 8081 -j ACCEPT")
    journal = sh(stage, one, "journalctl -u follow-swarm-service --no-pager -o cat")
    assert journal.count("insert nat DOCKER") == 1  # later reconciles found the rule as iptables prints it

    sh(stage, one, "systemctl stop docker.socket docker.service || systemctl stop docker.service")
    try:
        wait_for("VIP released with docker gone", lambda: not any(vip_holders(stage).values()))
        assert our_rules(stage, one) == []
    finally:
        sh(stage, one, "systemctl start docker.service")
    wait_for(f"VIP back on {one}", lambda: only_on(stage, one), tries=120)
    wait_for("rules back", lambda: len(our_rules(stage, one)) == 3, tries=60)
    assert sh(stage, two, f"timeout 10 busybox wget -q -O - http://{VIP}:8080/").strip() == "follow"

    sh(stage, boss, "docker service rm follow-nat")
    wait_for("VIP gone", lambda: not any(vip_holders(stage).values()))
    wait_for("rules gone", lambda: our_rules(stage, one) == [])


def test_a_node_shutting_down_takes_its_label_back(stage: Lab, hive: Hive) -> None:
    """Last here: the host container is stopped (systemd shuts down; our unit stops before docker's). The label
    must be gone from the swarm as the other managers see it; a restart of the daemon alone would keep it."""
    boss, _, two = sorted(stage.hosts)
    sh(stage, boss, f"docker service create --detach --name follow-down --label HIVE_MARK=follow "
                    f"--constraint node.hostname=={short(two)} --no-resolve-image {IMAGE} /bin/busybox sleep 86400")
    wait_for(f"follow=true on {two}", lambda: marked(stage) == [short(two)])
    ready = "journalctl -u follow-swarm-service -o cat | grep -c 'following docker events' || true"
    before = int(sh(stage, two, ready))
    sh(stage, two, "systemctl restart follow-swarm-service")
    wait_for("daemon back and following", lambda: int(sh(stage, two, ready)) > before)
    assert marked(stage) == [short(two)]  # a plain restart keeps it
    subprocess.run(["docker", "stop", stage.container(two)], check=True, capture_output=True, timeout=120)
    wait_for("label gone with the node", lambda: marked(stage) == [])
