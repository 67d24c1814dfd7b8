"""Load a host-side program from hive_nornir/payloads/ by path, so its pure logic is unit-tested without the
product ever importing it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PAYLOADS = Path(__file__).resolve().parents[2] / "hive_nornir" / "payloads"


def load_payload(name: str) -> ModuleType:
    """Import payloads/<name>.py under the module name `payload_<name>` (cached in sys.modules)."""
    mod_name = f"payload_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, PAYLOADS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module
