"""RunReport: the result of a phase as data, text, JSON and HTML, with an exit code that means something."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from hive_nornir.engine.outcome import CHANGED, FAILED, OK, SKIPPED, UNREACHABLE, HostOutcome

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_FAILED = 3
EXIT_UNREACHABLE = 4
EXIT_LOCKED = 5

EXIT_CODES = {
    EXIT_OK: "every selected host finished (changed or not)",
    EXIT_INTERNAL: "internal error in hive_nornir (a bug: please report it with the log)",
    EXIT_BAD_INPUT: ("bad input: site file, flag, phase, tag, host name, stage state or --resume selection; "
                     "nothing was changed"),
    EXIT_FAILED: "at least one host failed a step (others may have finished), or the provider failed",
    EXIT_UNREACHABLE: "at least one host was unreachable and none failed otherwise",
    EXIT_LOCKED: "another run holds the stage lock; nothing was changed",
}

_RANK = {SKIPPED: 0, OK: 1, CHANGED: 2, FAILED: 3, UNREACHABLE: 4}


@dataclass
class HostSummary:
    """One row of the summary table: how one host did over the whole phase."""

    host: str
    status: str = SKIPPED
    ok: int = 0
    changed: int = 0
    failed_step: str = ""
    error: str = ""
    seconds: float = 0.0
    round_trips: int = 0


@dataclass
class RunReport:
    """Everything a phase did, per step and host; what the CLI prints, cron stores and Jupyter shows."""

    phase: str
    stage: str
    check: bool = False
    started_at: str = ""
    seconds: float = 0.0
    hosts: list[str] = field(default_factory=list)
    outcomes: list[HostOutcome] = field(default_factory=list)
    resumed_from: str = ""
    error: str = ""  # the run ended before any host was touched (bad input, stage lock): why
    error_exit: int = 0  # and the exit code that error means

    def summaries(self) -> list[HostSummary]:
        """Per-host roll-up; a host's status is its worst step status."""
        rows = {h: HostSummary(h) for h in self.hosts}
        for o in self.outcomes:
            row = rows.setdefault(o.host, HostSummary(o.host))
            row.seconds = round(row.seconds + o.seconds, 3)
            row.round_trips += o.round_trips
            row.changed += len(o.changes)
            if o.status in (OK, CHANGED):
                row.ok += 1
            if o.status in (FAILED, UNREACHABLE) and not row.failed_step:
                row.failed_step, row.error = o.step, o.error
            if _RANK[o.status] > _RANK[row.status]:
                row.status = o.status
        return list(rows.values())

    @property
    def changed(self) -> int:
        """How many changes the phase made (or would make, in check mode)."""
        return sum(len(o.changes) for o in self.outcomes)

    @property
    def failed_hosts(self) -> list[str]:
        """Hosts that failed a step."""
        return [s.host for s in self.summaries() if s.status == FAILED]

    @property
    def unreachable_hosts(self) -> list[str]:
        """Hosts that could not be reached."""
        return [s.host for s in self.summaries() if s.status == UNREACHABLE]

    @property
    def ok(self) -> bool:
        """True when no host failed or was unreachable and the run itself did not stop on an error."""
        return not self.error_exit and not self.failed_hosts and not self.unreachable_hosts

    @property
    def exit_code(self) -> int:
        """Documented exit code: a run-level error first, then failures outrank unreachable hosts."""
        if self.error_exit:
            return self.error_exit
        if self.failed_hosts:
            return EXIT_FAILED
        if self.unreachable_hosts:
            return EXIT_UNREACHABLE
        return EXIT_OK

    def changes(self) -> list[tuple[str, str, str, str]]:
        """(host, step, what, diff) for every change, for --diff and notebooks."""
        return [(o.host, o.step, c.summary + (" (assumed)" if c.assumed else ""), c.diff)
                for o in self.outcomes for c in o.changes]

    def to_dict(self) -> dict[str, Any]:
        """Machine-readable report (--json)."""
        return {
            "phase": self.phase, "stage": self.stage, "check": self.check, "started_at": self.started_at,
            "seconds": self.seconds, "exit_code": self.exit_code, "changed": self.changed,
            "resumed_from": self.resumed_from, "error": self.error,
            "hosts": [vars(s) for s in self.summaries()],
            "steps": [o.to_dict() for o in self.outcomes],
        }

    def to_json(self) -> str:
        """JSON text of to_dict()."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def text(self) -> str:
        """Plain summary table: no colour codes, safe for cron mail and logs."""
        head = ("host", "status", "ok", "changed", "failed step", "time", "why")
        rows = [(s.host, s.status, str(s.ok), str(s.changed), s.failed_step or "-", f"{s.seconds:.1f}s",
                 _one_line(s.error) or "-") for s in self.summaries()]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
        lines = [
            f"{self.phase} on stage {self.stage}{' (check mode: nothing changed)' if self.check else ''}: "
            f"{len(self.hosts)} host(s), {self.changed} change(s), {self.seconds:.1f}s, exit {self.exit_code}"
        ]
        for r in [head, *rows]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)) + "  " + r[-1])
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        """Jupyter shows the summary as a table, with changes listed under it."""
        colours = {OK: "#2e7d32", CHANGED: "#b26a00", FAILED: "#c62828", UNREACHABLE: "#6a1b9a", SKIPPED: "#777"}
        cells = "".join(
            f"<tr><td>{html.escape(s.host)}</td><td style='color:{colours[s.status]}'><b>{s.status}</b></td>"
            f"<td>{s.ok}</td><td>{s.changed}</td><td>{html.escape(s.failed_step)}</td>"
            f"<td>{s.seconds:.1f}s</td><td>{html.escape(s.error)}</td></tr>"
            for s in self.summaries()
        )
        changes = "".join(
            f"<li>{html.escape(h)} / {html.escape(step)}: {html.escape(what)}</li>"
            for h, step, what, _ in self.changes()
        )
        return (
            f"<div><b>{html.escape(self.phase)}</b> on <b>{html.escape(self.stage)}</b>"
            f"{' (check mode)' if self.check else ''}: {self.changed} change(s), exit {self.exit_code}"
            "<table><tr><th>host</th><th>status</th><th>ok</th><th>changed</th><th>failed step</th>"
            f"<th>time</th><th>why</th></tr>{cells}</table>"
            + (f"<details><summary>changes</summary><ul>{changes}</ul></details>" if changes else "")
            + "</div>"
        )


def _one_line(text: str) -> str:
    """Errors can be multi-line; the table shows the first meaningful line."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:160]
    return ""
