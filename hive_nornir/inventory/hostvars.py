"""Per-host and per-stage hive_* variables, and their merge with group_vars and host_vars."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..site import Site, Stage
from .addresses import Placement
from .constants import (
    ADMIN_BY_PROVIDER,
    ALL,
    DEFAULT_ADMIN,
    FIRST_HIVE,
    GROUP_DEPTH,
    HIVES,
    HOSTS,
    REPOSITORY,
    SERVERS,
    STAGE_GROUP_DEPTH,
)

# stage key -> variable set on every server (when the key is present)
_SERVER_KEYS: dict[str, str] = {
    "root_password": "hive_root_password",
    "kernel_version": "hive_kernel_version",
    "drbd_download_url": "hive_drbd_download_url",
    "internal_cidr": "hive_internal_cidr",
    "internal_cidr_v6": "hive_internal_cidr_v6",
    "kms_key_id": "hive_kms_key_id",
    "shared_repository": "hive_shared_repository",
    "image_name": "hive_vm_image_name",
}
_HIVE_KEYS: dict[str, str] = {
    "memory_size": "hive_memory_size",
    "cpus": "hive_cpus",
    "disk_size": "hive_disk_size",
    "disk_encrypted": "hive_disk_encrypted",
    "instance_type": "hive_instance_type",
    "mirrored_disk_size": "hive_mirrored_disk_size",
    "mirrored_disk_encrypted": "hive_mirrored_disk_encrypted",
}
_REPOSITORY_KEYS: dict[str, str] = {
    "repository_memory_size": "hive_memory_size",
    "repository_cpus": "hive_cpus",
    "repository_disk_size": "hive_disk_size",
    "repository_disk_encrypted": "hive_disk_encrypted",
    "repository_instance_type": "hive_instance_type",
}
# stage key -> variable hive-builder puts on the mother; here on the stage group
_STAGE_KEYS: dict[str, str] = {
    "region": "hive_region",
    "bridge": "hive_bridge",
    "dev": "hive_dev",
    "kickstart_config": "hive_kickstart_config",
    "filestore_cidr": "hive_filestore_cidr",
    "prepared_resource_group": "hive_prepared_resource_group",
    "not_support_az": "hive_not_support_az",
}


@dataclass(frozen=True)
class Server:
    """One server of a stage: its name, index, role groups and computed host variables."""

    name: str
    idx: int
    groups: tuple[str, ...]  # role groups (hosts, servers, ...), lowest precedence first; not all, not the stage
    host_data: dict[str, Any]


def _copy(stage: Stage, keys: dict[str, str]) -> dict[str, Any]:
    return {var: stage.raw[key] for key, var in keys.items() if key in stage.raw}


def group_order(groups: Iterable[str], stage_name: str) -> list[str]:
    """Ansible's group_vars merge order, lowest first: shallower groups first, equal depth by name.

    hive-builder never sets ansible_group_priority (and Ansible ignores it in group_vars files), so depth and
    name decide alone: all < first_hive < hosts < <stage> < servers < hives < repository.
    """
    def depth(group: str) -> int:
        return STAGE_GROUP_DEPTH if group == stage_name else GROUP_DEPTH[group]

    return sorted(set(groups), key=lambda g: (depth(g), g))


def hives_vars(site: Site, stage: Stage) -> dict[str, Any]:
    """The group var hive-builder sets on `hives` only (per stage here: hive-builder's bug 12 is not copied)."""
    return {"hive_swarm_master": stage.host_name(0, site.name)}


def stage_vars(site: Site, stage: Stage) -> dict[str, Any]:
    """Variables hive-builder sets on groups all and <stage> and on the mother, for one stage."""
    # hive-builder's mother var holds the subnets as written (default names are only given to hive_subnet)
    subnets = [dict(s) for s in stage.raw.get("subnets") or []]
    return {
        "hive_name": site.name,
        "hive_stage": stage.name,
        "hive_provider": stage.provider,
        "hive_custom_hostname": stage.custom_hostname,
        "hive_admin": ADMIN_BY_PROVIDER.get(stage.provider, DEFAULT_ADMIN),
        "hive_cidr": stage.cidr,
        "hive_subnets": subnets or [{"cidr": stage.cidr, "name": f"{site.name}-default"}],
        **_copy(stage, _STAGE_KEYS),
    }


def servers(site: Site, stage: Stage, placements: list[Placement]) -> list[Server]:
    """Servers of a stage with hive-builder's role rules (last one is the repository)."""
    last = stage.number_of_hosts - 1
    out = []
    for idx, place in enumerate(placements):
        data: dict[str, Any] = {
            "hive_private_ip": place.ip,
            "hive_netmask": place.netmask,
            "hive_subnet": place.subnet,
            **({"hive_available_zone": place.available_zone} if place.available_zone is not None else {}),
            **_copy(stage, _SERVER_KEYS),
        }
        roles: list[str] = [HOSTS, SERVERS]
        if idx < last or not stage.separate_repository:
            roles.append(HIVES)
            data.update(_copy(stage, _HIVE_KEYS))
        if idx == last:
            roles.append(REPOSITORY)
            data.update(_copy(stage, _REPOSITORY_KEYS))
        if idx == 0:
            roles.append(FIRST_HIVE)
        out.append(Server(stage.host_name(idx, site.name), idx, tuple(group_order(roles, stage.name)), data))
    return out


def merged_data(site: Site, stage: Stage, server: Server) -> dict[str, Any]:
    """Ansible's precedence: host_vars files > host vars of the inventory plugin > group_vars files (by
    group_order) > group vars of the inventory plugin (hive_name, hive_provider, hive_swarm_master, ...)."""
    data = stage_vars(site, stage)
    if HIVES in server.groups:
        data.update(hives_vars(site, stage))
    for group in group_order((ALL, stage.name, *server.groups), stage.name):
        data.update(site.group_vars.get(group, {}))
    data.update(server.host_data)
    data.update(site.host_vars.get(server.name, {}))
    return data
