"""follow-swarm-service on a real 3-hive swarm: a service's HIVE_VIP and HIVE_MARK follow its task between nodes.

The hives get setup-hosts' own steps (certificates, firewall, venv, docker, this daemon, swarm) through the API.
Stand-in: no image can be pulled here, so each hive imports a one-binary image (Debian's busybox-static) for the
service's task. The controller never dials the VIP: every observation is `docker exec` inside the hosts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from conftest import Lab, start_lab, stop_lab
from hive_nornir.runbooks.setup_hosts import RUNBOOK as SETUP_HOSTS

from hive_nornir.api import Hive
from hive_nornir.engine.outcome import CHANGED
from hive_nornir.engine.runbook import Runbook
from hive_nornir.report.run_report import EXIT_OK

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
    "d=$(mktemp -d); mkdir $d/bin; cp $(command -v busybox) $d/bin/busybox; "
    f"tar -C $d -c . | docker import - {IMAGE} >/dev/null; rm -rf $d"
)


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """3 hives (p-hive0 is also the repository), set up once for every test here."""
    lab = start_lab(tmp_path_factory.mktemp(NAME), NAME, CIDR, 3, separate=False,
                    group_vars="hive_venv_pip_packages: []   # lab hosts have no PyPI\n")
    try:
        yield lab
    finally:
        stop_lab(lab)


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
