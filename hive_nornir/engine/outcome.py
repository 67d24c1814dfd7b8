"""Plain records of what happened on a host in a step: what reports, the journal and JSON are made of."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OK, CHANGED, FAILED, UNREACHABLE, SKIPPED = "ok", "changed", "failed", "unreachable", "skipped"


@dataclass
class Change:
    """One primitive (or imperative action) that changed, or would change in check mode."""

    ident: str
    summary: str
    diff: str = ""
    assumed: bool = False  # check mode: depends on an earlier change that was only predicted


@dataclass
class HostOutcome:
    """The result of one step on one host."""

    host: str
    step: str
    status: str = OK
    changes: list[Change] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    started_at: float = 0.0  # epoch seconds: shows steps really ran in parallel
    round_trips: int = 0
    handlers_run: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON reports."""
        return asdict(self)
