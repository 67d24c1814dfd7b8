"""Service definitions as Engine API specs (deploy-services), overlay networks (build-networks), volumes: key by key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hive_nornir.services import StageServices, load_service_files
from hive_nornir.tasks.services.networks import network_plan
from hive_nornir.tasks.services.spec import (
    SPEC_LABEL,
    DeployEnv,
    duration_ns,
    image_ref,
    memory_bytes,
    service_spec,
    spec_hash,
)
from hive_nornir.tasks.services.volumes import drbd_plan, volume_digest

FILE = """\
plugin: hive_services
services:
  web:
    image: {from: base:1, roles: [web], pull_on: [staging], pull_from: ghcr.io/x/web:2}
    command: -m http.server 8080
    entrypoint: [/usr/bin/python3]
    environment: {GREETING: hello, N: 3, FLAG: true}
    ports: ["8080", "80:8000", "53:53/udp", {target_port: 9000, protocol: tcp, mode: host}]
    volumes:
    - {source: web_data, target: /data, type: volume, drbd: {fstype: xfs, size: 500M, diskless: [p-hive2.s]}}
    - {source: web_cache, target: /cache, type: volume, driver: local, driver_opts: {type: tmpfs, device: tmpfs}}
    - {source: /var/run/docker.sock, target: /var/run/docker.sock, readonly: true}
    replicas: 2
    endpoint_mode: dnsrr
    placement: {constraints: ["node.labels.web == true"], preferences: [{spread: node.labels.zone}]}
    labels: {HIVE_VIP: 192.168.0.100, HIVE_MARK: web, n: 3, l: [1, 2]}
    logging: {driver: journald, options: {tag: web}}
    dns: 192.168.1.2
    hosts: {test.example.com: 192.168.1.2}
    user: www-data
    working_dir: /srv
    stop_grace_period: 1m30s
    restart_config: {condition: on-failure, delay: 5s, max_attempts: 3, window: 120s}
    healthcheck: {test: curl -f localhost:8080, interval: 10s, timeout: 2s, retries: 3, start_period: 500ms}
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    sysctls: {net.core.somaxconn: 1024}
    cpu_limit: 0.5
    mem_limit: 512M
    networks: [backend]
  db:
    image: mariadb:10
    mode: global
    standalone: true
networks:
  backend: {driver_opts: {encrypted: "true"}, ipam: {config: [{subnet: 10.10.0.0/24, gateway: 10.10.0.1}]}}
"""

ENV = DeployEnv(image="p-hive3.s:5000/image_web:latest", hosts={"p-hive0.s": "10.0.0.4", "p-hive3.s": "10.0.0.7"},
                networks=("backend", "hive_default_network"), repository="p-hive3.s",
                labels={"hive_nornir.site": "s", "hive_nornir.stage": "private"}, image_id="sha256:abc")


def stage_of(tmp_path: Path, text: str = FILE, stage: str = "private") -> StageServices:
    path = tmp_path / "inventory" / "services.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    services, issues = load_service_files([path])
    assert not [i for i in issues if not i.warning], issues
    return services.resolve(stage, root=tmp_path)


def without_hash(spec: dict[str, Any]) -> dict[str, Any]:
    return {**spec, "Labels": {k: v for k, v in spec["Labels"].items() if k != SPEC_LABEL}}


def test_every_key_maps_to_the_engine_api(tmp_path: Path) -> None:
    web = stage_of(tmp_path).services["web"]
    spec = service_spec(web, ENV)
    assert without_hash(spec) == {
        "Name": "web",
        "Labels": {"HIVE_STANDALONE": "False", "HIVE_VIP": "192.168.0.100", "HIVE_MARK": "web", "n": "3",
                   "l": "[1, 2]", "hive_nornir.site": "s", "hive_nornir.stage": "private"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "p-hive3.s:5000/image_web:latest", "Hostname": "web",
                "Labels": {"hive_nornir.image": "sha256:abc"},
                "Command": ["/usr/bin/python3"], "Args": ["-m", "http.server", "8080"],  # swarm's names
                "Env": ["GREETING=hello", "N=3", "FLAG=true"],
                "Mounts": [{"Target": "/data", "Source": "web_data", "Type": "volume"},
                           {"Target": "/cache", "Source": "web_cache", "Type": "volume"},
                           {"Target": "/var/run/docker.sock", "Source": "/var/run/docker.sock", "Type": "bind",
                            "ReadOnly": True}],
                "Hosts": ["10.0.0.4 p-hive0.s", "10.0.0.7 p-hive3.s", "192.168.1.2 test.example.com"],
                "DNSConfig": {"Nameservers": ["192.168.1.2"]},
                "User": "www-data", "Dir": "/srv", "StopGracePeriod": 90 * 10**9,
                "HealthCheck": {"Test": ["CMD-SHELL", "curl -f localhost:8080"], "Interval": 10 * 10**9,
                                "Timeout": 2 * 10**9, "StartPeriod": 500 * 10**6, "Retries": 3},
                "CapabilityAdd": ["NET_ADMIN"], "CapabilityDrop": ["MKNOD"],
                "Sysctls": {"net.core.somaxconn": "1024"},
            },
            "LogDriver": {"Name": "journald", "Options": {"tag": "web"}},
            "Resources": {"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 512 * 1024**2}},
            "RestartPolicy": {"Condition": "on-failure", "Delay": 5 * 10**9, "Window": 120 * 10**9,
                              "MaxAttempts": 3},
            "Placement": {"Constraints": ["node.labels.web == true"],
                          "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}]},
            "Networks": [{"Target": "backend"}],
        },
        "Mode": {"Replicated": {"Replicas": 2}},
        "EndpointSpec": {"Mode": "dnsrr", "Ports": [
            {"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 61001, "PublishMode": "ingress"},
            {"Protocol": "tcp", "TargetPort": 8000, "PublishedPort": 80, "PublishMode": "ingress"},
            {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "ingress"},
            {"Protocol": "tcp", "TargetPort": 9000, "PublishedPort": 61002, "PublishMode": "host"}]},
    }
    assert spec["Labels"][SPEC_LABEL] == spec_hash(spec)


def test_hive_builder_defaults_syslog_every_network_standalone(tmp_path: Path) -> None:
    db = stage_of(tmp_path).services["db"]
    spec = service_spec(db, DeployEnv(image="mariadb:10", hosts={}, networks=("backend", "hive_default_network"),
                                      repository="p-hive3.s"))
    task = spec["TaskTemplate"]
    assert task["LogDriver"] == {"Name": "syslog", "Options": {
        "syslog-address": "udp://p-hive3.s:10514", "syslog-facility": "local0", "tag": "db"}}
    assert task["Networks"] == [{"Target": "backend"}, {"Target": "hive_default_network"}]
    assert spec["Mode"] == {"Global": {}}
    assert spec["EndpointSpec"] == {"Mode": "vip"}
    c = task["ContainerSpec"]
    assert spec["Labels"]["HIVE_STANDALONE"] == "True"
    assert c["Args"] == ["sh", "-c", "mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec /sbin/init"]
    assert c["CapabilityAdd"] == ["NET_ADMIN", "SYS_ADMIN", "SYSLOG", "SYS_PTRACE", "AUDIT_CONTROL"]
    assert [m["Target"] for m in c["Mounts"]] == ["/run", "/tmp", "/sys/fs/cgroup"]
    assert {m["Type"] for m in c["Mounts"]} == {"tmpfs"}
    tls = service_spec(db, DeployEnv(image="mariadb:10", hosts={}, networks=(), repository="r", tls_logging=True,
                                     home="/home/hive", syslog_port=20514))
    assert tls["TaskTemplate"]["LogDriver"]["Options"] == {
        "syslog-address": "tcp+tls://r:20514", "syslog-facility": "local0", "tag": "db",
        "syslog-tls-ca-cert": "/home/hive/.docker/ca.pem", "syslog-tls-cert": "/home/hive/.docker/cert.pem",
        "syslog-tls-key": "/home/hive/.docker/key.pem"}


def test_the_hash_changes_with_the_definition_or_the_image_only(tmp_path: Path) -> None:
    web = stage_of(tmp_path).services["web"]
    same = service_spec(stage_of(tmp_path).services["web"], ENV)  # a second parse: ports persisted, same spec
    assert service_spec(web, ENV) == same
    other_env = stage_of(tmp_path, FILE.replace("GREETING: hello", "GREETING: bye")).services["web"]
    assert service_spec(other_env, ENV)["Labels"][SPEC_LABEL] != same["Labels"][SPEC_LABEL]
    new_image = DeployEnv(**{**ENV.__dict__, "image_id": "sha256:def"})
    assert service_spec(web, new_image)["Labels"][SPEC_LABEL] != same["Labels"][SPEC_LABEL]


def test_image_is_the_built_one_pull_from_on_pull_on_or_the_tag_then_mapped(tmp_path: Path) -> None:
    private = stage_of(tmp_path).services
    assert image_ref(private["web"], "private", "p-hive3.s:5000", {}) == "p-hive3.s:5000/image_web:latest"
    assert image_ref(private["db"], "private", "p-hive3.s:5000", {}) == "mariadb:10"
    assert image_ref(private["db"], "private", "r:5000", {"mariadb:10": "mirror/mariadb:10"}) == "mirror/mariadb:10"
    staging = stage_of(tmp_path, stage="staging").services
    assert image_ref(staging["web"], "staging", "s-hive3.s:5000", {}) == "ghcr.io/x/web:2"


@pytest.mark.parametrize(("text", "ns"), [("30s", 30 * 10**9), ("1m30s", 90 * 10**9), ("500ms", 5 * 10**8),
                                          ("1h", 3600 * 10**9), ("1.5s", 1_500_000_000)])
def test_durations(text: str, ns: int) -> None:
    assert duration_ns(text) == ns


def test_bad_duration_and_memory_are_value_errors() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        duration_ns("10")
    with pytest.raises(ValueError, match="not a size"):
        memory_bytes("lots")
    assert memory_bytes("2G") == 2 * 1024**3 and memory_bytes(1000) == 1000 and memory_bytes("1.5k") == 1536


def test_networks_overlay_with_ipam_and_the_default_from_internal_cidr(tmp_path: Path) -> None:
    nets = stage_of(tmp_path).networks
    backend = network_plan(nets["backend"], "172.31.252.0/22")
    assert (backend.options, backend.ipam_config) == ({"encrypted": "true"},
                                                      ({"subnet": "10.10.0.0/24", "gateway": "10.10.0.1"},))
    default = network_plan(nets["hive_default_network"], "172.31.252.0/22")
    assert default.ipam_config == ({"subnet": "172.31.252.0/24"},) and default.attachable
    assert network_plan(nets["hive_default_network"], None).ipam_config == ()
    assert network_plan(nets["hive_default_network"], None).sdk_ipam() is None
    ipam = backend.sdk_ipam()
    assert ipam["Config"] == [{"Subnet": "10.10.0.0/24", "Gateway": "10.10.0.1", "IPRange": None,
                              "AuxiliaryAddresses": None}]
    assert default.digest != network_plan(nets["hive_default_network"], "10.0.0.0/22").digest


def test_volumes_driver_digest_and_drbd_plan(tmp_path: Path) -> None:
    volumes = stage_of(tmp_path).volumes
    assert {n: v.kind for n, v in volumes.items()} == {"web_data": "drbd", "web_cache": "driver"}
    assert drbd_plan(volumes["web_data"]) == (
        "drbd resource web_data: /dev/drbd1, port 7001, thin LV drbdvg/web_data 500M in drbdpool, xfs, docker "
        "volume web_data (local, device /dev/drbd1), diskless on p-hive2.s")
    cache = volumes["web_cache"]
    assert cache.options == {"driver": "local", "driver_options": {"type": "tmpfs", "device": "tmpfs"}}
    changed = stage_of(tmp_path, FILE.replace("type: tmpfs, device", "type: tmpfs, o: size=1m, device")).volumes
    assert volume_digest(changed["web_cache"]) != volume_digest(cache)
