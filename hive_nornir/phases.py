"""Phases by name: build-infra runs on the controller; every other phase is a Runbook registered as an entry point.

A distribution adds a phase with `[project.entry-points."hive_nornir.phases"] my-phase = "my_pkg.my_phase:RUNBOOK"`
(or a module that has RUNBOOK); the CLI and the API find it with no change here.
"""

from __future__ import annotations

from types import ModuleType

from hive_nornir.engine.runbook import Runbook
from hive_nornir.registry import PHASE_GROUP, PluginError, lookup, plugins

# build-infra is driven by the stage's provider on the controller (see hive_nornir.infra), not a runbook.
LOCAL_PHASES = ("build-infra",)
# hive-builder's PHASE_LIST: registered phases of these names are listed in this order, any other after, by name.
HIVE_BUILDER_ORDER = ("build-infra", "setup-hosts", "build-images", "build-volumes", "build-networks",
                      "deploy-services", "initialize-services")


def phase_names() -> list[str]:
    """Every phase the CLI accepts: hive-builder's phases in its order, then third-party ones by name."""
    names = {*LOCAL_PHASES, *plugins(PHASE_GROUP)}
    known = [n for n in HIVE_BUILDER_ORDER if n in names]
    return known + sorted(names - set(known))


def load_runbook(phase: str) -> Runbook:
    """The phase's Runbook from its entry point (a Runbook, or a module with RUNBOOK); bad input otherwise."""
    if phase in LOCAL_PHASES:
        raise PluginError(f"phase {phase!r} runs on the controller (hive_nornir.infra), it has no runbook")
    plugin = lookup(PHASE_GROUP, phase, "phase")
    loaded = plugin.load()
    runbook = getattr(loaded, "RUNBOOK", None) if isinstance(loaded, ModuleType) else loaded
    if not isinstance(runbook, Runbook):
        raise PluginError(f"phase {phase!r} of {plugin.dist} ({plugin.value}) is not a Runbook "
                          f"(got {type(runbook).__name__}); point the entry point at a Runbook or a module "
                          f"with RUNBOOK")
    return runbook
