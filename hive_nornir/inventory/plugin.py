"""Nornir inventory plugin `HiveInventory`: InitNornir(inventory={"plugin": "HiveInventory", ...})."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nornir.core.inventory import Inventory

from ..site import load_site
from ..site.project import announce, find_project
from .build import build_inventory, context_dir_for
from .constants import STATE_FILE


class StateError(ValueError):
    """state.json exists but cannot be used; names the file so the user can fix or delete it."""


def read_state(context_dir: Path) -> dict[str, Any] | None:
    """The provider's state.json of a stage, or None before build-infra has run."""
    path = Path(context_dir) / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: cannot read provider state: {exc}") from exc
    if not isinstance(state, dict) or not isinstance(state.get("hosts", {}), dict):
        raise StateError(f"{path}: expected an object with a 'hosts' object")
    return state


class HiveInventory:
    """Loads the site (the nearest project at or above root_dir, see site.project) and the stage state."""

    def __init__(self, root_dir: str = ".", stage: str = "private", site_file: str | None = None,
                 strict: bool = False) -> None:
        self.root_dir = Path(root_dir)
        self.stage = stage
        self.site_file = Path(site_file) if site_file else None
        self.strict = strict  # refuse what hive-builder accepts but does surprisingly (the site's warnings)

    def load(self) -> Inventory:
        """Nornir's InventoryPlugin protocol: build the inventory now."""
        if self.site_file:
            site_path, root = self.site_file, self.root_dir
        else:  # the nearest project at or above root_dir, like Hive()
            project = find_project(self.root_dir)
            announce(project)
            site_path, root = project.site_file, project.root
        site = load_site(site_path, root_dir=root, strict=self.strict)
        context = context_dir_for(root, self.stage)
        return build_inventory(site, self.stage, read_state(context), context_dir=context)
