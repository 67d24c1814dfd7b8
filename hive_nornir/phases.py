"""Which runbook module implements which phase; the CLI and the API look phases up here."""

from __future__ import annotations

import importlib

from hive_nornir.engine.errors import BadInput
from hive_nornir.engine.runbook import Runbook

# build-infra is driven by the stage's provider on the controller (see hive_nornir.api), not a runbook.
PHASES: dict[str, str] = {
    "setup-hosts": "hive_nornir.runbooks.setup_hosts",
}
LOCAL_PHASES = ("build-infra",)


def phase_names() -> list[str]:
    """Every phase the CLI accepts, in hive-builder's order."""
    return [*LOCAL_PHASES, *PHASES]


def load_runbook(phase: str) -> Runbook:
    """Import the phase's runbook module and return its RUNBOOK."""
    module_name = PHASES.get(phase)
    if module_name is None:
        raise BadInput(f"unknown phase {phase!r}; known phases: {', '.join(phase_names())}")
    runbook = importlib.import_module(module_name).RUNBOOK
    if not isinstance(runbook, Runbook):
        raise TypeError(f"{module_name}.RUNBOOK is not a Runbook")
    return runbook
