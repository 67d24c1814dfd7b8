"""Site + stage (+ provider state) -> a Nornir Inventory, by hive-builder's naming and grouping rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nornir.core.inventory import (
    ConnectionOptions,
    Defaults,
    Group,
    Groups,
    Host,
    Hosts,
    Inventory,
    ParentGroups,
)

from ..site import Site
from .addresses import allocate
from .connection import connection_extras, endpoint
from .constants import HIVES, KEY_VARIABLES, PLATFORM, ROLE_GROUPS
from .hostvars import group_order, hives_vars, merged_data, servers, stage_vars


def context_dir_for(root_dir: Path, stage_name: str) -> Path:
    """The stage context dir, `<root>/.hive/<stage>`, where keys and state.json live."""
    return Path(root_dir) / ".hive" / stage_name


def _defaults(site: Site, extras: dict[str, dict[str, Any]]) -> Defaults:
    options = {
        "hive_ssh": ConnectionOptions(extras=extras["hive_ssh"]),
        "netmiko": ConnectionOptions(platform=PLATFORM, extras=extras["netmiko"]),
    }
    data = {"hive_name": site.name, **site.group_vars.get("all", {})}
    return Defaults(platform=PLATFORM, data=data, connection_options=options)


def _host_options(defaults: Defaults, data: dict[str, Any], root: Path) -> dict[str, ConnectionOptions]:
    """netmiko offers the host's `ansible_ssh_private_key_file` too (hive_ssh reads it in transport/plugin.py).

    Nornir takes a host's extras whole instead of merging them with the defaults', so they are copied in full.
    """
    key = next((data[name] for name in KEY_VARIABLES if data.get(name)), None)
    if not key:
        return {}
    path = Path(str(key)).expanduser()
    extras = dict(defaults.connection_options["netmiko"].extras or {})
    extras["key_file"] = str(path if path.is_absolute() else Path(root).absolute() / path)
    return {"netmiko": ConnectionOptions(platform=PLATFORM, extras=extras)}


def build_inventory(
    site: Site,
    stage_name: str,
    state: dict[str, Any] | None = None,
    context_dir: Path | None = None,
) -> Inventory:
    """The Nornir inventory of one stage; every host carries its fully merged variables in data."""
    stage = site.stage(stage_name)
    context = context_dir if context_dir is not None else context_dir_for(site.root_dir, stage_name)
    defaults = _defaults(site, connection_extras(context, state))
    group_data: dict[str, dict[str, Any]] = {g: dict(site.group_vars.get(g, {})) for g in ROLE_GROUPS}
    group_data[stage.name] = {**stage_vars(site, stage), **site.group_vars.get(stage.name, {})}
    group_data[HIVES] = {**hives_vars(site, stage), **group_data[HIVES]}
    groups = Groups({n: Group(name=n, data=d, defaults=defaults) for n, d in group_data.items()})
    hosts = Hosts()
    for server in servers(site, stage, allocate(stage, site.name)):
        data = merged_data(site, stage, server)
        where = endpoint(server.name, data, state)
        # Nornir looks groups up first-listed-first: highest precedence first (Ansible's order, see group_order).
        order = group_order((stage.name, *server.groups), stage.name)
        parents = ParentGroups([groups[g] for g in reversed(order)])
        hosts[server.name] = Host(
            name=server.name,
            hostname=where.hostname,
            port=where.port,
            username=where.username,
            platform=PLATFORM,
            groups=parents,
            data=data,
            connection_options=_host_options(defaults, data, site.root_dir),
            defaults=defaults,
        )
    return Inventory(hosts=hosts, groups=groups, defaults=defaults)
