"""Validated service definitions, and their resolution for one stage as hive-builder's plugin resolves them.

Resolution (`ServiceSet.resolve`) assigns auto published ports (from 61001) and DRBD minors (from 1) over every
service in file order, whatever its stages, exactly as hive-builder's plugin does on each parse, and keeps both
maps in `.hive/persistents.yml`, so a port or a minor never moves between runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hive_nornir.site.rules import STAGE_NAMES

from .persist import read_persistents, stage_map, write_stage_maps
from .rules import AUTO_PORT_FIRST, AUTO_PORT_LAST, DEFAULT_NETWORK, DRBD_MINOR_LAST

# hive-builder's SERVICE_PARAMS_COPY: copied as they are to the host var hive_<key> of the service
COPIED_KEYS = ("backup_scripts", "command", "dns", "endpoint_mode", "entrypoint", "environment", "healthcheck",
               "hosts", "ignore_error", "initialize_roles", "labels", "logging", "monitor_error", "mode",
               "networks", "placement", "replicas", "restart_config", "stop_grace_period", "standalone", "user",
               "working_dir", "cap_add", "cap_drop", "sysctls", "cpu_limit", "mem_limit")
MOUNT_KEYS = ("target", "type", "source", "readonly")  # VOLUME_PARAMS
STANDALONE_CAPS = ("NET_ADMIN", "SYS_ADMIN", "SYSLOG", "SYS_PTRACE", "AUDIT_CONTROL")
STANDALONE_COMMAND = ("sh", "-c", "mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec /sbin/init")
STANDALONE_MOUNTS = tuple({"source": "", "target": t, "type": "tmpfs"} for t in ("/run", "/tmp", "/sys/fs/cgroup"))


class ResolveError(ValueError):
    """The persistent maps are full (hive-builder: 'too many published ports or garbage port number ...')."""


@dataclass(frozen=True)
class ServiceDef:
    """One service as written: where it is, and its plain, validated keys."""

    name: str
    file: Path
    line: int
    raw: dict[str, Any]
    available_on: tuple[str, ...]


@dataclass(frozen=True)
class NetworkDef:
    """One overlay network (`networks:` of a file, or the implicit hive_default_network)."""

    name: str
    raw: dict[str, Any]
    available_on: tuple[str, ...]

    @property
    def hive_vars(self) -> dict[str, Any]:
        """hive-builder's host vars of the network: hive_driver, hive_ipam, hive_driver_opts as written."""
        return {f"hive_{k}": v for k, v in self.raw.items()}


@dataclass(frozen=True)
class Port:
    """A published port with its published_port resolved."""

    target_port: int
    published_port: int
    protocol: str = "tcp"
    mode: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """hive-builder's hive_ports item."""
        out: dict[str, Any] = {"published_port": self.published_port, "target_port": self.target_port,
                               "protocol": self.protocol}
        if self.mode is not None:
            out["mode"] = self.mode
        return out


@dataclass(frozen=True)
class Volume:
    """A volume build-volumes makes (hive-builder's pseudo-host volume_<source>, var hive_volume)."""

    name: str
    kind: str  # drbd | nfs | driver
    options: dict[str, Any]
    available_on: tuple[str, ...]
    service: str

    @property
    def host_name(self) -> str:
        """hive-builder's inventory name of the volume."""
        return f"volume_{self.name}"

    @property
    def hive_volume(self) -> dict[str, Any]:
        """hive-builder's hive_volume variable: {name, drbd: {...}} / {name, nfs: {...}} / {name, driver, ...}."""
        if self.kind == "driver":
            return {"name": self.name, **self.options}
        return {"name": self.name, self.kind: self.options}


@dataclass(frozen=True)
class ImageBuild:
    """An image build-images makes on the repository (pseudo-host image_<service>)."""

    service: str
    options: dict[str, Any]
    available_on: tuple[str, ...]
    standalone: bool

    @property
    def name(self) -> str:
        """image_<service>: its repository name in the stage registry."""
        return f"image_{self.service}"

    @property
    def hive_vars(self) -> dict[str, Any]:
        """hive-builder's host vars of image_<service>: hive_<option>, and standalone builds privileged."""
        out: dict[str, Any] = {"hive_standalone": True, "hive_privileged": True} if self.standalone else {}
        out.update({f"hive_{k}": v for k, v in self.options.items()})
        return out

    def pulled_on(self, stage: str) -> bool:
        """The stage deploys pull_from instead of building (`pull_on`)."""
        return stage in (self.options.get("pull_on") or ())


@dataclass(frozen=True)
class Service:
    """One service resolved for a stage: hive-builder's host vars of the service, and its image."""

    name: str
    definition: ServiceDef
    hive_vars: dict[str, Any]
    ports: tuple[Port, ...]
    mounts: tuple[dict[str, Any], ...]
    image_tag: str | None
    build: ImageBuild | None

    def get(self, key: str, default: Any = None) -> Any:
        """A hive_<key> variable of the service."""
        return self.hive_vars.get(f"hive_{key}", default)


@dataclass(frozen=True)
class StageServices:
    """What the service phases of one stage work on (services, images, volumes, networks of that stage)."""

    stage: str
    services: dict[str, Service]
    images: dict[str, ImageBuild]
    volumes: dict[str, Volume]
    networks: dict[str, NetworkDef]
    port_map: dict[str, int] = field(repr=False, default_factory=dict)
    device_map: dict[str, int] = field(repr=False, default_factory=dict)


@dataclass(frozen=True)
class ServiceSet:
    """Every services file of a project, validated (in file order, services in their written order)."""

    files: tuple[Path, ...] = ()
    services: tuple[ServiceDef, ...] = ()
    networks: tuple[NetworkDef, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.services)

    def resolve(self, stage: str, root: Path | None = None, save: bool = True) -> StageServices:
        """The stage's view, with ports and minors taken from (and new ones saved to) `.hive/persistents.yml`."""
        data = read_persistents(root) if root is not None else {}
        port_map = stage_map(data, "published_port_map", stage)
        device_map = stage_map(data, "drbd_device_map", stage)
        services: dict[str, Service] = {}
        images: dict[str, ImageBuild] = {}
        every_volume: dict[str, Volume] = {}
        for definition in self.services:
            service, build, made = _resolve_service(definition, port_map, device_map)
            for volume in made:  # as Ansible's inventory: the last definition's variables, every one's stages
                seen = every_volume.get(volume.host_name)
                stages = tuple(dict.fromkeys((*(seen.available_on if seen else ()), *volume.available_on)))
                every_volume[volume.host_name] = dataclasses.replace(volume, available_on=stages)
            if stage not in definition.available_on:
                continue
            services[service.name] = service
            if build is not None:
                images[build.name] = build
        volumes = {v.name: v for v in every_volume.values() if stage in v.available_on}
        networks = {n.name: n for n in self.networks if stage in n.available_on}
        if root is not None and save:
            write_stage_maps(root, stage, {"published_port_map": port_map, "drbd_device_map": device_map})
        return StageServices(stage, services, images, volumes, networks, port_map, device_map)


def _resolve_service(d: ServiceDef, port_map: dict[str, int],
                     device_map: dict[str, int]) -> tuple[Service, ImageBuild | None, list[Volume]]:
    """hive-builder's Service.parse for one service: its host vars, image build and volumes."""
    raw = d.raw
    hive_vars: dict[str, Any] = {f"hive_{k}": raw[k] for k in COPIED_KEYS if k in raw}
    standalone = bool(raw.get("standalone", False))
    mounts: list[dict[str, Any]] = [dict(m) for m in STANDALONE_MOUNTS] if standalone else []
    if standalone:
        caps = list(raw.get("cap_add") or [])
        caps.extend(c for c in STANDALONE_CAPS if c not in caps)
        hive_vars["hive_cap_add"] = caps
        if raw.get("command", "") == "":
            hive_vars["hive_command"] = list(STANDALONE_COMMAND)
    made: list[Volume] = []
    for volume in raw.get("volumes") or []:
        made.extend(_volumes_of(d, volume, device_map))
        mounts.append({k: v for k, v in volume.items() if k in MOUNT_KEYS})
    if "volumes" in raw or standalone:
        hive_vars["hive_volumes"] = mounts
    build: ImageBuild | None = None
    image = raw.get("image")
    image_tag = image if isinstance(image, str) else None
    if image_tag is not None:
        hive_vars["hive_image"] = image_tag
    elif isinstance(image, dict):
        build = ImageBuild(d.name, dict(image), d.available_on, standalone)
        hive_vars["hive_image_name"] = build.name
    ports = tuple(_port(d.name, p, port_map) for p in raw.get("ports") or [])
    if "ports" in raw:
        hive_vars["hive_ports"] = [p.as_dict() for p in ports]
    return Service(d.name, d, hive_vars, ports, tuple(mounts), image_tag, build), build, made


def _volumes_of(d: ServiceDef, volume: dict[str, Any], device_map: dict[str, int]) -> list[Volume]:
    source = str(volume["source"])
    out: list[Volume] = []
    if "nfs" in volume:
        nfs = dict(volume["nfs"] or {})
        out.append(Volume(source, "nfs", nfs, tuple(nfs.get("available_on") or d.available_on), d.name))
    if "driver" in volume:
        options: dict[str, Any] = {"driver": volume["driver"]}
        if "driver_opts" in volume:
            options["driver_options"] = dict(volume["driver_opts"])
        out.append(Volume(source, "driver", options, d.available_on, d.name))
    if "drbd" in volume:
        drbd = dict(volume["drbd"])
        if "device_id" not in drbd:
            drbd["device_id"] = device_map[source] if source in device_map else _free(
                device_map, range(1, DRBD_MINOR_LAST + 1), "drbd volumes", "device_id", "drbd_device_map")
        device_map[source] = int(drbd["device_id"])
        out.append(Volume(source, "drbd", drbd, tuple(drbd.get("available_on") or d.available_on), d.name))
    return out


def _port(service: str, item: Any, port_map: dict[str, int]) -> Port:
    """hive-builder's port rule: short strings parsed, a missing published_port assigned and persisted."""
    if isinstance(item, str):
        spec, _, protocol = item.partition("/")
        parts = [int(p) for p in spec.split(":")]
        portdef: dict[str, Any] = {"target_port": parts[-1], "protocol": protocol or "tcp"}
        if len(parts) > 1:
            portdef["published_port"] = parts[0]
    else:
        portdef = dict(item)
    key = f"{service}{portdef['target_port']}"
    if "published_port" not in portdef:
        portdef["published_port"] = port_map[key] if key in port_map else _free(
            port_map, range(AUTO_PORT_FIRST, AUTO_PORT_LAST + 1), "published ports", "port number",
            "published_port_map")
    port_map[key] = int(portdef["published_port"])
    return Port(int(portdef["target_port"]), int(portdef["published_port"]), str(portdef.get("protocol", "tcp")),
                portdef.get("mode"))


def _free(taken: dict[str, int], candidates: range, what: str, unit: str, name: str) -> int:
    used = set(taken.values())
    for value in candidates:
        if value not in used:
            return value
    raise ResolveError(f"too many {what}, or stale {unit}s remain in {name} of .hive/persistents.yml")


def default_network(available_on: tuple[str, ...] = STAGE_NAMES) -> NetworkDef:
    """hive_default_network: always there unless a file defines it."""
    return NetworkDef(DEFAULT_NETWORK, {}, available_on)
