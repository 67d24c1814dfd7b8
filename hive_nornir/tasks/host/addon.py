"""addon / addon2: a site's own task file (`<site root>/addons/addon.py`), run at hive-builder's addon points."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext

ADDON_DIR = "addons"


def addon_path(context_dir: Path | None, name: str) -> Path | None:
    """`<root>/addons/<name>.py`, where <root>/.hive/<stage> is the stage context dir."""
    if context_dir is None:
        return None
    return context_dir.parent.parent / ADDON_DIR / f"{name}.py"


def load_addon(path: Path, name: str) -> Callable[[Any], None]:
    """Import the file and return its `<name>(ctx)` function; a broken file is a clear failure, not a traceback."""
    spec = importlib.util.spec_from_file_location(f"hive_site_addon_{name}", path)
    if spec is None or spec.loader is None:
        raise StepFailed(f"{path}: cannot be imported as a Python file")
    module: ModuleType = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # any error in the site's file is reported with its path
        raise StepFailed(f"{path}: {type(e).__name__}: {e}") from e
    func = getattr(module, name, None)
    if not callable(func):
        raise StepFailed(f"{path}: defines no function {name}(ctx)")
    return func


def run_addon(ctx: TaskContext, name: str) -> None:
    """No file, nothing to do (hive-builder's built-in addon roles are no-ops too)."""
    path = addon_path(ctx.context_dir, name)
    if path is None or not path.is_file():
        return
    load_addon(path, name)(ctx)


def addon(ctx: TaskContext) -> None:
    """Runs after pip-venv, before internal-network, like hive-builder's addon role."""
    run_addon(ctx, "addon")


def addon2(ctx: TaskContext) -> None:
    """Runs last in setup-hosts, like hive-builder's addon2 role."""
    run_addon(ctx, "addon2")
