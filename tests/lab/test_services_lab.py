"""The service phases on a real 3-hive swarm (setup-hosts' docker, registry and swarm steps), through the docker SDK
over an SSH forward to each engine's TLS API: build-networks, build-volumes, deploy-services.

STAND-IN: no image registry outside is reachable, so the base image is busybox-static from the Debian mirror,
`docker import`ed into the repository's engine and pushed to the stage registry (hive-builder's registry on the
repository); the services pull it from there as any hive-builder site pulls its built images. Ports are published in
host mode and services use endpoint_mode dnsrr: the lab's kernel has no IPVS, which swarm's routing mesh and VIPs
need. DRBD volumes are unit-tested only (no kernel module here).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hive_nornir.api import Hive
from hive_nornir.report.run_report import EXIT_FAILED, EXIT_OK

pytestmark = pytest.mark.lab

NAME, CIDR, INTERNAL = "svc", "10.190.0.0/24", "172.31.252.0/22"
REPO = f"p-hive3.{NAME}"
REGISTRY = f"{REPO}:5000"
SETUP_TAGS = ["ssh-connection", "tls-certificate", "hostsfile", "iptables", "docker", "docker-client", "registry",
              "swarm"]

SERVICES = f"""\
plugin: hive_services
services:
  web:
    image: {REGISTRY}/busybox:lab
    command: [httpd, -f, -p, "8080", -h, /www]
    environment: {{GREETING: hello}}
    endpoint_mode: dnsrr
    ports:
      - {{published_port: 18080, target_port: 8080, protocol: tcp, mode: host}}
    mode: global
    volumes:
      - {{source: webdata, target: /data, type: volume, driver: local}}
    labels: {{HIVE_MARK: web, tier: [front]}}
  worker:
    image: {REGISTRY}/busybox:lab
    command: [sleep, "1000000"]
    endpoint_mode: dnsrr
    replicas: 2
    networks: [backend, hive_default_network]
networks:
  backend: {{}}
"""

STANDIN_IMAGE = """\
set -e
export DEBIAN_FRONTEND=noninteractive
command -v busybox >/dev/null || apt-get install -y -q busybox-static >/dev/null 2>&1
rm -rf /root/rootfs && mkdir -p /root/rootfs/bin /root/rootfs/www /root/rootfs/data /root/rootfs/tmp
cp /bin/busybox /root/rootfs/bin/busybox && ln -s busybox /root/rootfs/bin/sh
echo "hello from the stand-in busybox" > /root/rootfs/www/index.html
tar -C /root/rootfs -c . | docker import --change 'ENTRYPOINT ["/bin/busybox"]' - "$1/busybox:lab" >/dev/null
docker login -u hive --password-stdin "$1" </root/registry_password >/dev/null 2>&1
rm -f /root/registry_password
docker push "$1/busybox:lab" >/dev/null
"""


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One lab for the module: 3 hives + repository, setup-hosts' engine, registry and swarm, the stand-in image."""
    from conftest import own_lab

    with own_lab(tmp_path_factory.mktemp(NAME), NAME, CIDR, 4, separate=True,
                 stage_extra=f"internal_cidr: {INTERNAL}") as lab:
        (lab.root / "inventory" / "services.yml").write_text(SERVICES)
        report = Hive(lab.root, stage="private").run("setup-hosts", tags=SETUP_TAGS)
        assert report.exit_code == EXIT_OK, report.text()
        repo = lab.container(REPO)
        script = lab.root / "standin.sh"
        script.write_text(STANDIN_IMAGE)
        for path in (lab.context_dir / "registry_password", script):
            subprocess.run(["docker", "cp", str(path), f"{repo}:/root/"], check=True)
        rc, out = lab.docker_exec(REPO, f"sh /root/standin.sh {REGISTRY}", timeout=600)
        assert rc == 0, out
        yield lab


def sh(lab: Any, host: str, cmd: str) -> str:
    rc, out = lab.docker_exec(host, cmd)
    assert rc == 0, (host, cmd, out)
    return out


def inspect(lab: Any, what: str, name: str) -> dict[str, Any]:
    return json.loads(sh(lab, "p-hive0", f"docker {what} inspect {name}"))[0]  # type: ignore[no-any-return]


def hives(lab: Any) -> list[str]:
    return [h for h in lab.hosts if not h.startswith("p-hive3")]


def changes(report: Any) -> list[tuple[str, str, str]]:
    return sorted((h, step, what) for h, step, what, _ in report.changes())


def test_check_mode_predicts_and_changes_nothing(stage: Any) -> None:
    hive = Hive(stage.root, stage="private")
    report = hive.run("build-networks", check=True)
    assert report.exit_code == EXIT_OK, report.text()
    assert changes(report) == [
        ("p-hive0.svc", "build-networks", "create overlay network backend"),
        ("p-hive0.svc", "build-networks", "create overlay network hive_default_network (172.31.252.0/24)")]
    assert "backend" not in sh(stage, "p-hive0", "docker network ls --format '{{.Name}}'").split()
    report = hive.run("deploy-services", check=True)
    assert report.exit_code == EXIT_OK, report.text()
    assert sorted(w for _, _, w in changes(report)) == sorted([f"pull {REGISTRY}/busybox:lab"] * 3 + [
        f"create service web ({REGISTRY}/busybox:lab)", f"create service worker ({REGISTRY}/busybox:lab)"])
    assert sh(stage, "p-hive0", "docker service ls -q").strip() == ""


def test_the_phases_build_networks_volumes_and_running_services(stage: Any) -> None:
    hive = Hive(stage.root, stage="private")
    for phase in ("build-volumes", "build-networks", "deploy-services"):  # hive-builder's order
        report = hive.run(phase)
        assert report.exit_code == EXIT_OK, report.text()
    backend = inspect(stage, "network", "backend")
    assert (backend["Driver"], backend["Scope"], backend["Attachable"]) == ("overlay", "swarm", True)
    assert backend["Labels"]["hive_nornir.site"] == NAME and backend["Labels"]["hive_nornir.stage"] == "private"
    default = inspect(stage, "network", "hive_default_network")
    assert [c["Subnet"] for c in default["IPAM"]["Config"]] == ["172.31.252.0/24"]
    for host in hives(stage):
        volume = json.loads(sh(stage, host, "docker volume inspect webdata"))[0]
        assert volume["Driver"] == "local" and volume["Labels"]["hive_nornir.stage"] == "private"
    web = inspect(stage, "service", "web")["Spec"]
    assert web["Labels"]["HIVE_MARK"] == "web" and web["Labels"]["tier"] == '["front"]'
    assert web["Labels"]["HIVE_STANDALONE"] == "False"
    c = web["TaskTemplate"]["ContainerSpec"]
    assert c["Hostname"] == "web" and c["Env"] == ["GREETING=hello"]
    assert sorted(c["Hosts"]) == sorted(f"{e['private_ip']} {h}" for h, e in stage.state["hosts"].items())
    assert web["TaskTemplate"]["LogDriver"]["Options"]["syslog-address"] == f"udp://{REPO}:10514"
    worker = inspect(stage, "service", "worker")
    nets = {n["Target"] for n in worker["Spec"]["TaskTemplate"]["Networks"]}
    assert nets == {backend["Id"], default["Id"]}
    # the web service answers on its published port on every hive, from another hive
    for host in hives(stage):
        ip = stage.state["hosts"][host]["private_ip"]
        out = sh(stage, "p-hive1", f"python3 -c \"import urllib.request; print(urllib.request.urlopen("
                                   f"'http://{ip}:18080/', timeout=10).read().decode())\"")
        assert "hello from the stand-in busybox" in out
    ps = sh(stage, "p-hive0", "docker service ps worker --filter desired-state=running --format '{{.CurrentState}}'")
    assert ps.count("Running") == 2, ps


def test_a_second_run_of_every_phase_changes_nothing(stage: Any) -> None:
    hive = Hive(stage.root, stage="private")
    before = {s: inspect(stage, "service", s)["Version"]["Index"] for s in ("web", "worker")}
    for phase in ("build-volumes", "build-networks", "deploy-services"):
        for check in (True, False):
            report = hive.run(phase, check=check)
            assert report.exit_code == EXIT_OK, report.text()
            assert report.changed == 0, report.changes()
    assert {s: inspect(stage, "service", s)["Version"]["Index"] for s in ("web", "worker")} == before
    cli = subprocess.run([sys.executable, "-m", "hive_nornir", "-r", str(stage.root), "run", "deploy-services"],
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "0 change(s)" in cli.stdout, cli.stdout


def test_a_changed_environment_updates_only_that_service(stage: Any) -> None:
    path = Path(stage.root / "inventory" / "services.yml")
    before = {s: inspect(stage, "service", s)["Version"]["Index"] for s in ("web", "worker")}
    path.write_text(SERVICES.replace("GREETING: hello", "GREETING: bye"))
    try:
        report = Hive(stage.root, stage="private").run("deploy-services")
        assert report.exit_code == EXIT_OK, report.text()
        assert changes(report) == [("p-hive0.svc", "deploy-services", f"update service web ({REGISTRY}/busybox:lab)")]
        web = inspect(stage, "service", "web")
        assert web["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] == ["GREETING=bye"]
        assert web["Version"]["Index"] > before["web"]
        assert inspect(stage, "service", "worker")["Version"]["Index"] == before["worker"]
    finally:
        path.write_text(SERVICES)
    report = Hive(stage.root, stage="private").run("deploy-services")
    assert report.exit_code == EXIT_OK, report.text()


def test_a_service_of_another_stack_is_refused_and_left_alone(stage: Any) -> None:
    sh(stage, "p-hive0", f"docker service create -d --name other --endpoint-mode dnsrr {REGISTRY}/busybox:lab "
                         "sleep 1000000")
    path = Path(stage.root / "inventory" / "services.yml")
    other = inspect(stage, "service", "other")
    before = {s: inspect(stage, "service", s)["Version"]["Index"] for s in ("web", "worker")}
    path.write_text(SERVICES.replace("GREETING: hello", "GREETING: again").replace(
        "networks:\n", f"  other:\n    image: {REGISTRY}/busybox:lab\nnetworks:\n"))
    try:
        report = Hive(stage.root, stage="private").run("deploy-services")
        assert report.exit_code == EXIT_FAILED, report.text()
        failed = next(o for o in report.outcomes if o.step == "deploy-services")
        assert "service other exists" in failed.error and "left alone" in failed.error, failed.error
        assert inspect(stage, "service", "other")["Version"] == other["Version"]  # untouched
        assert {s: inspect(stage, "service", s)["Version"]["Index"] for s in ("web", "worker")} == before
    finally:
        path.write_text(SERVICES)
        sh(stage, "p-hive0", "docker service rm other")


def test_destroy_removes_our_services_then_volumes_and_nothing_else(stage: Any) -> None:
    sh(stage, "p-hive0", f"docker service create -d --name bystander --endpoint-mode dnsrr {REGISTRY}/busybox:lab "
                         "sleep 1000000")
    hive = Hive(stage.root, stage="private")
    try:
        predicted = hive.run("deploy-services", check=True, destroy=True)
        assert changes(predicted) == [("p-hive0.svc", "deploy-services", "remove service web"),
                                      ("p-hive0.svc", "deploy-services", "remove service worker")]
        assert {"web", "worker"} <= set(sh(stage, "p-hive0", "docker service ls --format '{{.Name}}'").split())
        report = hive.run("deploy-services", destroy=True)
        assert report.exit_code == EXIT_OK and len(report.changes()) == 2, report.text()
        report = hive.run("build-volumes", destroy=True)  # right after: the web tasks may still be stopping
        assert report.exit_code == EXIT_OK, report.text()
        assert changes(report) == [(h, "build-volumes", "remove volume webdata") for h in sorted(hives(stage))]
        assert sh(stage, "p-hive0", "docker service ls --format '{{.Name}}'").split() == ["bystander"]
        for host in hives(stage):
            assert "webdata" not in sh(stage, host, "docker volume ls --format '{{.Name}}'").split()
        for phase in ("deploy-services", "build-volumes"):
            assert hive.run(phase, destroy=True).changed == 0
        cli = subprocess.run([sys.executable, "-m", "hive_nornir", "-r", str(stage.root), "run", "setup-hosts",
                              "-D"], capture_output=True, text=True, timeout=120)
        assert cli.returncode == 2 and "-D/--destroy only applies to" in cli.stderr, cli.stderr
    finally:
        sh(stage, "p-hive0", "docker service rm bystander")
