"""Hand-off views of an inventory: SimpleInventory YAML files, ansible-inventory's JSON and the CLI table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from nornir.core.inventory import ConnectionOptions, Host, Inventory

from .constants import FIRST_HIVE, HIVES, HOSTS, REPOSITORY, SERVERS
from .secrets import mask_secrets

_OPTION_FIELDS = ("hostname", "port", "username", "password", "platform", "extras")


class _PlainDumper(yaml.SafeDumper):
    """Writes a value shared by several hosts in full each time: no &id001 anchors for a reader to resolve."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _options(options: dict[str, ConnectionOptions]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, opt in options.items():
        item = {k: getattr(opt, k) for k in _OPTION_FIELDS}
        out[name] = {k: v for k, v in item.items() if v is not None}
    return out


def _element(elem: Host, with_address: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if with_address:
        for attr in ("hostname", "port", "username", "platform"):
            value = getattr(elem, attr)
            if value is not None:
                out[attr] = value
    out["groups"] = [g.name for g in elem.groups]
    out["data"] = dict(elem.data)
    out["connection_options"] = _options(elem.connection_options)
    return out


def _write_private(path: Path, content: dict[str, Any]) -> None:
    """Exports hold secrets such as hive_root_password: owner-only, written in place."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.dump(content, fh, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False)


def export_simple_inventory(inventory: Inventory, out_dir: Path) -> dict[str, Path]:
    """hosts.yaml, groups.yaml and defaults.yaml that plain SimpleInventory loads without hive_nornir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    defaults = inventory.defaults
    files: dict[str, tuple[Path, dict[str, Any]]] = {
        "hosts": (out / "hosts.yaml", {n: _element(h, True) for n, h in inventory.hosts.items()}),
        "groups": (out / "groups.yaml", {n: _element(g, False) for n, g in inventory.groups.items()}),
        "defaults": (out / "defaults.yaml", {
            **({"platform": defaults.platform} if defaults.platform else {}),
            "data": dict(defaults.data),
            "connection_options": _options(defaults.connection_options),
        }),
    }
    for path, content in files.values():
        _write_private(path, content)
    return {name: path for name, (path, _) in files.items()}


_ROLE_ORDER = (HOSTS, SERVERS, HIVES, REPOSITORY, FIRST_HIVE)


def inventory_rows(inventory: Inventory) -> list[dict[str, Any]]:
    """One row per host for the CLI table: name, groups, address:port, user, private ip."""
    rows = []
    for name, host in inventory.hosts.items():
        names = [g.name for g in host.groups]
        ordered = [g for g in _ROLE_ORDER if g in names] + [g for g in names if g not in _ROLE_ORDER]
        rows.append({
            "name": name,
            "groups": ",".join(ordered),
            "address": f"{host.hostname}:{host.port}",
            "user": host.username,
            "private_ip": host.get("hive_private_ip"),
        })
    return rows


def ansible_host_vars(host: Host, masked: bool = True) -> dict[str, Any]:
    """A host's merged variables as `ansible-inventory --host` prints them, plus where hive_nornir connects.

    masked: secret values (passwords, tokens, keys) replaced by a mask, for output a person or a log reads.
    """
    data = dict(host.extended_data())
    out: dict[str, Any] = mask_secrets(data) if masked else data
    out.update({"ansible_host": host.hostname, "ansible_port": host.port, "ansible_user": host.username})
    key_file = (host.get_connection_parameters("hive_ssh").extras or {}).get("key_file")
    if key_file:
        out["ansible_ssh_private_key_file"] = str(key_file)
    return out


def ansible_list(inventory: Inventory, masked: bool = True) -> dict[str, Any]:
    """The inventory as `ansible-inventory --list` prints it: every group's hosts as a list, hostvars in _meta."""
    groups = sorted(inventory.groups, key=lambda g: (g not in _ROLE_ORDER, _ROLE_ORDER.index(g)
                                                     if g in _ROLE_ORDER else 0, g))
    out: dict[str, Any] = {"_meta": {"hostvars": {n: ansible_host_vars(h, masked)
                                                 for n, h in inventory.hosts.items()}},
                           "all": {"children": ["ungrouped", *groups]}}
    for group in groups:
        members = [n for n, h in inventory.hosts.items() if group in [g.name for g in h.groups]]
        if members:
            out[group] = {"hosts": members}
    return out
