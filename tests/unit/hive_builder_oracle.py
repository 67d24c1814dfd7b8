"""hive-builder's own inventory plugin (fixtures/hive_builder, verbatim) run without Ansible: the compatibility oracle.

The plugin needs only `BaseInventoryPlugin`, `AnsibleParserError` and an inventory with add_group/add_child/
add_host/set_variable; stubs stand in for them. `parse()` reads its options through Ansible's config machinery,
so `inventory_of` replays parse()'s body (the group skeleton, then the four Stage calls per stage) instead.
"""

from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).parent / "fixtures" / "hive_builder" / "hive_inventory.py.src"


class AnsibleParserError(Exception):
    """Stand-in for ansible.errors.AnsibleParserError."""


class _BaseInventoryPlugin:
    """Stand-in for ansible.plugins.inventory.BaseInventoryPlugin (the Stage class never touches it)."""


@dataclass
class FakeInventory:
    """What the plugin records: groups with their children, hosts with their groups, variables per name."""

    groups: dict[str, set[str]] = field(default_factory=dict)  # group -> hosts
    children: dict[str, set[str]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)  # host or group -> vars

    def add_group(self, name: str) -> None:
        self.groups.setdefault(name, set())

    def add_child(self, parent: str, child: str) -> None:
        self.children.setdefault(parent, set()).add(child)

    def add_host(self, name: str, group: str) -> None:
        self.groups.setdefault(group, set()).add(name)

    def set_variable(self, name: str, key: str, value: Any) -> None:
        self.variables.setdefault(name, {})[key] = value

    def groups_of(self, host: str) -> set[str]:
        return {g for g, hosts in self.groups.items() if host in hosts}


def _module() -> types.ModuleType:
    stubs = {
        "ansible": types.ModuleType("ansible"),
        "ansible.plugins": types.ModuleType("ansible.plugins"),
        "ansible.plugins.inventory": types.ModuleType("ansible.plugins.inventory"),
        "ansible.errors": types.ModuleType("ansible.errors"),
    }
    stubs["ansible.plugins.inventory"].BaseInventoryPlugin = _BaseInventoryPlugin  # type: ignore[attr-defined]
    stubs["ansible.errors"].AnsibleParserError = AnsibleParserError  # type: ignore[attr-defined]
    saved = {name: sys.modules.get(name) for name in stubs}
    sys.modules.update(stubs)
    try:
        module = types.ModuleType("hive_builder_hive_inventory")
        exec(compile(SOURCE.read_text(), str(SOURCE), "exec"), module.__dict__)  # the oracle itself, verbatim
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    return module


_PLUGIN = _module()


def inventory_of(doc: dict[str, Any], first_hive: str = "0") -> FakeInventory:
    """hive-builder's inventory of a parsed hive.yml; any exception is hive-builder refusing the site.

    `hive` exports HIVE_FIRST_HIVE (default 0) before Ansible parses the inventory; so does this.
    """
    inventory = FakeInventory()
    for group in ("servers", "hives", "repository", "first_hive", "mother", "hosts"):
        inventory.add_group(group)
    for parent, child in (("servers", "hives"), ("servers", "repository"), ("hosts", "servers"),
                          ("hosts", "mother")):
        inventory.add_child(parent, child)
    name = doc["name"]
    inventory.set_variable("all", "hive_name", name)
    old = os.environ.get("HIVE_FIRST_HIVE")
    os.environ["HIVE_FIRST_HIVE"] = first_hive
    try:
        for stage_name, option in doc["stages"].items():
            stage = _PLUGIN.Stage(name, stage_name, option, inventory)
            stage.set_provider()
            stage.add_stage_group()
            stage.set_subnets()
            stage.add_hives()
    finally:
        if old is None:
            os.environ.pop("HIVE_FIRST_HIVE", None)
        else:
            os.environ["HIVE_FIRST_HIVE"] = old
    return inventory


SERVICES_SOURCE = Path(__file__).parent / "fixtures" / "hive_builder" / "hive_services.py.src"


class AnsibleMapping(dict[Any, Any]):
    """Stand-in for ansible.parsing.yaml.objects.AnsibleMapping (the plugin compares type() ==)."""


class AnsibleSequence(list[Any]):
    """Stand-in for AnsibleSequence."""


class AnsibleUnicode(str):
    """Stand-in for AnsibleUnicode."""

    __slots__ = ()


@dataclass
class _Display:
    """Stand-in for ansible's Display: the plugin's warnings are collected."""

    warnings: list[str] = field(default_factory=list)

    def warning(self, msg: str) -> None:
        self.warnings.append(msg)


def ansible_typed(value: Any) -> Any:
    """YAML data as Ansible's loader gives it to the plugin (its own mapping, sequence and string types)."""
    if isinstance(value, dict):
        return AnsibleMapping({ansible_typed(k): ansible_typed(v) for k, v in value.items()})
    if isinstance(value, list):
        return AnsibleSequence(ansible_typed(v) for v in value)
    if isinstance(value, str):
        return AnsibleUnicode(value)
    return value


def _services_module() -> types.ModuleType:
    names = ["ansible", "ansible.plugins", "ansible.plugins.inventory", "ansible.errors", "ansible.parsing",
             "ansible.parsing.yaml", "ansible.parsing.yaml.objects", "ansible.module_utils",
             "ansible.module_utils.six", "ansible.utils", "ansible.utils.display", "hive_builder",
             "hive_builder.hive"]
    stubs = {name: types.ModuleType(name) for name in names}
    attrs: dict[str, dict[str, Any]] = {
        "ansible.plugins.inventory": {"BaseInventoryPlugin": _BaseInventoryPlugin},
        "ansible.errors": {"AnsibleParserError": AnsibleParserError},
        "ansible.parsing.yaml.objects": {"AnsibleMapping": AnsibleMapping, "AnsibleSequence": AnsibleSequence,
                                         "AnsibleUnicode": AnsibleUnicode},
        "ansible.module_utils.six": {"text_type": str},
        "ansible.utils.display": {"Display": _Display},
        "hive_builder.hive": {"hiveContext": object},
    }
    for name, values in attrs.items():
        for key, value in values.items():
            setattr(stubs[name], key, value)
    saved = {name: sys.modules.get(name) for name in stubs}
    sys.modules.update(stubs)
    try:
        module = types.ModuleType("hive_builder_hive_services")
        exec(compile(SERVICES_SOURCE.read_text(), str(SERVICES_SOURCE), "exec"), module.__dict__)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    return module


_SERVICES = _services_module()


@dataclass
class ServicesInventory:
    """What hive-builder's services plugin makes of one file: the inventory, both persistent maps, warnings."""

    inventory: FakeInventory
    device_map: dict[str, int]
    port_map: dict[str, int]
    warnings: list[str]


def services_inventory_of(doc: dict[str, Any], device_map: dict[str, int] | None = None,
                          port_map: dict[str, int] | None = None) -> ServicesInventory:
    """Replay InventoryModule.parse() of hive_services on a parsed file; an exception is hive-builder refusing it."""
    inventory = FakeInventory()
    typed = ansible_typed(doc)
    display = _Display()
    _SERVICES.display = display  # type: ignore[attr-defined]
    devices = dict(device_map or {})
    ports = dict(port_map or {})
    available_on = typed.get("available_on") or _SERVICES.STAGES
    for stage in available_on:
        if stage not in _SERVICES.STAGES:
            raise AnsibleParserError(f"element of available_on must be one of {_SERVICES.STAGES}, but {stage}")
    services = typed.get("services")
    if type(services) is not AnsibleMapping:
        raise AnsibleParserError("services must be dict type")
    for name, options in services.items():
        _SERVICES.Service(name, options, available_on).parse(inventory, devices, ports)
    networks = typed.get("networks")
    no_default = True
    if networks is not None:
        if type(networks) is not AnsibleMapping:
            raise AnsibleParserError("networks must be dict type")
        for name, options in networks.items():
            no_default = no_default and name != "hive_default_network"
            _SERVICES.Network(name, options, available_on).parse(inventory)
    if no_default:
        _SERVICES.Network("hive_default_network", AnsibleMapping(), available_on).parse(inventory)
    return ServicesInventory(inventory, devices, ports, display.warnings)
