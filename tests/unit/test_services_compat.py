"""Service definitions resolve to what hive-builder's own hive_services plugin makes of them (the oracle).

Each case is a services file; the oracle (fixtures/hive_builder/hive_services.py.src, verbatim) gives hive-builder's
inventory: groups per stage, host vars of each service, image_<svc>, volume_<src> and network, and both persistent
maps. hive_nornir's resolution of every stage must give the same, and refuse exactly what the oracle refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hive_builder_oracle import AnsibleParserError, services_inventory_of

from hive_nornir.services import load_service_files
from hive_nornir.services.persist import persistents_path, read_persistents

EVERY_KEY = """\
plugin: hive_services
services:
  web:
    available_on: [private, staging]
    image:
      from: hive-nornir-base:bookworm
      roles: [hive-trust-ca, web]
      env: {A: "1"}
      stop_signal: "2"
      user: root
      working_dir: /srv
      entrypoint: [/usr/bin/python3]
      command: ["-m", "http.server", "8080"]
      privileged: false
      expose: ["8080"]
    command: ["-m", "http.server"]
    entrypoint: [/usr/bin/python3]
    environment: {GREETING: hello, N: 3}
    ports: ["8080", "80:8080", "53:53/udp", {target_port: 9000, protocol: tcp, mode: host},
            {target_port: 9001, published_port: 9001, protocol: sctp}]
    volumes:
    - {source: web_data, target: /data, type: volume, drbd: {fstype: xfs, size: 500M, diskless: [p-hive2.pdns]}}
    - {source: web_cache, target: /cache, type: volume, driver: local, driver_opts: {type: tmpfs, device: tmpfs}}
    - {source: web_share, target: /share, type: volume, nfs: {}}
    - {source: /var/run/docker.sock, target: /var/run/docker.sock, readonly: true}
    mode: replicated
    replicas: 2
    endpoint_mode: dnsrr
    placement: {constraints: ["node.labels.web == true"], preferences: [{spread: node.labels.zone}]}
    labels: {HIVE_VIP: 192.168.0.100, HIVE_ROUTER: 192.168.0.1, HIVE_MARK: web, n: 3, l: [1, 2]}
    logging: {driver: journald, options: {tag: web}}
    dns: 192.168.1.2
    hosts: {test.example.com: 192.168.1.2}
    user: www-data
    working_dir: /srv
    stop_grace_period: 1m30s
    restart_config: {condition: on-failure, delay: 5s, max_attempts: 3, window: 120s}
    healthcheck: {test: ["CMD", "true"], interval: 10s, timeout: 2s, retries: 3, start_period: 5s}
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    sysctls: {net.core.somaxconn: 1024}
    cpu_limit: 1.5
    mem_limit: 512M
    networks: [front, hive_default_network]
    initialize_roles: [web-init]
    backup_scripts:
    - {name: data, directory: /data, cleanup_days_before: 3}
    - {name: db, backup_command: dump, backup_file: /t.sql, restore_command: load, restore_file: /t.sql, ext: sql,
       batch_scripts: [vacuum]}
    monitor_error: ["Error:"]
    ignore_error: ["favicon"]
  sys:
    image: {from: "almalinux:9", roles: [base], standalone: true, pull_on: [production], pull_from: me/sys}
    standalone: true
    cap_add: [SYS_ADMIN]
  plain:
    image: hive-nornir-base:bookworm
    ports: ["8081"]
    volumes:
    - {source: web_data, target: /data2, type: volume, drbd: {fstype: xfs, size: 500M, device_id: 7}}
networks:
  front:
    driver: overlay
    ipam: {driver: default, config: [{subnet: 172.30.0.0/24, gateway: 172.30.0.1}], options: {}}
    driver_opts: {encrypted: "true"}
"""

FILE_STAGES = """\
plugin: hive_services
available_on: [production]
services:
  a: {image: "x:1", ports: ["8080"], available_on: [private]}
  b: {image: "x:1", ports: ["8080", "9090"]}
"""

PDNS = Path(__file__).parent / "fixtures" / "services_pdns" / "inventory" / "powerdns.yml"
CASES = {"every-key": EVERY_KEY, "file-stages": FILE_STAGES, "pdns-example": PDNS.read_text()}


def _write(tmp_path: Path, text: str) -> Path:
    inv = tmp_path / "inventory"
    inv.mkdir(exist_ok=True)
    path = inv / "services.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_resolution_matches_hive_builder(case: str, tmp_path: Path) -> None:
    text = CASES[case]
    oracle = services_inventory_of(yaml.safe_load(text))
    found, issues = load_service_files([_write(tmp_path, text)])
    assert [i for i in issues if not i.warning] == []
    inv = oracle.inventory
    for stage in ("private", "staging", "production"):
        mine = found.resolve(stage, tmp_path)
        in_stage = inv.groups.get(stage, set())
        assert set(mine.services) == inv.groups.get("services", set()) & in_stage, stage
        for name, service in mine.services.items():
            assert service.hive_vars == inv.variables.get(name, {}), (stage, name)
        assert {i for i in mine.images} == inv.groups.get("images", set()) & in_stage
        for name, image in mine.images.items():
            assert image.hive_vars == inv.variables[name], (stage, name)
        volume_hosts = set().union(*(inv.groups.get(g, set()) for g in ("volumes", "drbd_volumes", "nfs_volumes")))
        volume_hosts &= in_stage
        assert {v.host_name for v in mine.volumes.values()} == volume_hosts, stage
        for volume in mine.volumes.values():
            assert volume.hive_volume == inv.variables[volume.host_name]["hive_volume"], (stage, volume.name)
        assert set(mine.networks) == inv.groups.get("networks", set()) & in_stage
        for name, network in mine.networks.items():
            assert network.hive_vars == inv.variables.get(name, {}), (stage, name)
        assert mine.port_map == oracle.port_map
        assert mine.device_map == oracle.device_map


def test_auto_published_ports_persist_in_hive_builders_file(tmp_path: Path) -> None:
    """Ports from 61001 in .hive/persistents.yml (published_port_map, stage-scoped); a new port never moves one."""
    path = _write(tmp_path, FILE_STAGES)
    found, _ = load_service_files([path])
    first = found.resolve("private", tmp_path)
    assert first.port_map == {"a8080": 61001, "b8080": 61002, "b9090": 61003}
    assert read_persistents(tmp_path)["published_port_map"] == {"private": first.port_map}
    # hive-builder's own parse of the same file with the persisted map gives the same ports
    assert services_inventory_of(yaml.safe_load(FILE_STAGES), port_map=first.port_map).port_map == first.port_map
    path.write_text(FILE_STAGES.replace('"8080", "9090"', '"7070", "8080", "9090"'))
    again, _ = load_service_files([path])
    second = again.resolve("private", tmp_path)
    assert second.port_map == {**first.port_map, "b7070": 61004}
    assert [p.published_port for p in again.resolve("production", tmp_path).services["b"].ports] == [
        61002, 61003, 61004]  # another stage has its own map (a, on private only, still takes 61001 there)
    assert set(read_persistents(tmp_path)["published_port_map"]) == {"private", "production"}
    before = persistents_path(tmp_path).stat().st_mtime_ns
    again.resolve("private", tmp_path)
    assert persistents_path(tmp_path).stat().st_mtime_ns == before  # nothing new: not rewritten


def test_other_persistent_variables_are_kept(tmp_path: Path) -> None:
    persistents_path(tmp_path).parent.mkdir(parents=True)
    persistents_path(tmp_path).write_text("stage: {global: private}\n")
    found, _ = load_service_files([_write(tmp_path, FILE_STAGES)])
    found.resolve("private", tmp_path)
    assert read_persistents(tmp_path)["stage"] == {"global": "private"}


REFUSED_BY_BOTH = {
    "unknown-service-key": "  web: {image: x, imagee: y}\n",
    "unknown-image-key": "  web: {image: {from: x, roles: [r], form: y}}\n",
    "image-without-from": "  web: {image: {roles: [r]}}\n",
    "pull-from-without-pull-on": "  web: {image: {from: x, roles: [r], pull_from: y}}\n",
    "short-volume": "  web: {image: x, volumes: [/a:/b]}\n",
    "volume-without-target": "  web: {image: x, volumes: [{source: a}]}\n",
    "nfs-and-driver": "  web: {image: x, volumes: [{source: a, target: /a, type: volume, nfs: {}, driver: local}]}\n",
    "drbd-and-driver": ("  web: {image: x, volumes: [{source: a, target: /a, type: volume, driver: local,"
                        " drbd: {fstype: xfs, size: 1G}}]}\n"),
    "unknown-volume-key": "  web: {image: x, volumes: [{source: a, target: /a, size: 1}]}\n",
    "bad-protocol": "  web: {image: x, ports: ['80/icmp']}\n",
    "int-port": "  web: {image: x, ports: [80]}\n",
    "not-a-mapping": "  web: [image, x]\n",
    "bad-stage": "  web: {image: x, available_on: [prod]}\n",
    "duplicate-minor": ("  a: {image: x, volumes: [{source: v1, target: /a, type: volume, drbd: {fstype: xfs, size: 1G,"
                        " device_id: 3}}]}\n  b: {image: x, volumes: [{source: v2, target: /a, type: volume,"
                        " drbd: {fstype: xfs, size: 1G, device_id: 3}}]}\n"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_BY_BOTH))
def test_refused_as_hive_builder_refuses(case: str, tmp_path: Path) -> None:
    text = "plugin: hive_services\nservices:\n" + REFUSED_BY_BOTH[case]
    refused: Any = None
    try:
        services_inventory_of(yaml.safe_load(text))
    except (AnsibleParserError, KeyError, ValueError, TypeError, AttributeError) as exc:
        refused = exc
    assert refused is not None, "the oracle accepts it: this case proves nothing"
    _, issues = load_service_files([_write(tmp_path, text)])
    errors = [i for i in issues if not i.warning]
    assert errors, f"hive-builder refuses it ({refused}), hive_nornir accepted it"
    assert all(i.line is not None and i.file.name == "services.yml" for i in errors)
