"""Nornir inventory of a hive site: naming, groups, addresses and connection details of one stage."""

from .addresses import Placement, allocate
from .build import build_inventory, context_dir_for
from .constants import SECRET_KEYS
from .export import ansible_host_vars, ansible_list, export_simple_inventory, inventory_rows
from .plugin import HiveInventory, StateError, read_state
from .secrets import is_secret_key, mask_secrets

__all__ = [
    "SECRET_KEYS",
    "HiveInventory",
    "Placement",
    "StateError",
    "allocate",
    "ansible_host_vars",
    "ansible_list",
    "build_inventory",
    "context_dir_for",
    "export_simple_inventory",
    "inventory_rows",
    "is_secret_key",
    "mask_secrets",
    "read_state",
]
