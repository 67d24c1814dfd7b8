"""Site errors: every problem names file, line, key path, the bad value and what is allowed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class _Missing:
    """Sentinel type for "no value" so None stays a reportable YAML value."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class Surprise(str):
    """A problem text for what hive-builder accepts but does surprisingly: a warning, an error under --strict."""


@dataclass(frozen=True)
class SiteIssue:
    """One problem in a site file, precise enough to fix without reading code (or a warning, see Surprise)."""

    file: Path
    line: int | None
    key: str
    problem: str
    value: Any = MISSING
    allowed: str = ""
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else f"{self.file}"
        what = self.problem if self.value is MISSING else f"{self.value!r} {self.problem}"
        text = f"{where}: {self.key}: {what}" if self.key else f"{where}: {what}"
        return f"{text}; expected {self.allowed}" if self.allowed else text


class SiteError(Exception):
    """All problems of a site at once, so a user fixes them in one pass."""

    def __init__(self, issues: Iterable[SiteIssue]) -> None:
        self.issues: tuple[SiteIssue, ...] = tuple(issues)
        super().__init__("\n".join(str(i) for i in self.issues))

    def __str__(self) -> str:
        return "\n".join(str(i) for i in self.issues)


class UnknownStageError(KeyError):
    """A stage the site does not define; a KeyError for callers, a readable line for users."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown stage"
