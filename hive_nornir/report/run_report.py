"""RunReport: the result of a phase as data, text, JSON, HTML and a Nornir AggregatedResult, with an exit code
that means something."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nornir.core.inventory import Host
from nornir.core.task import AggregatedResult, MultiResult, Result

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.outcome import CHANGED, FAILED, OK, SKIPPED, UNREACHABLE, HostOutcome

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_keys, dict_values

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


@dataclass(eq=False)
class RunReport(AggregatedResult):
    """Everything a phase did, per step and host; what the CLI prints, cron stores and Jupyter shows.

    It is also Nornir's AggregatedResult (a dict of host name -> MultiResult), derived from ``outcomes``, so
    ``report["p-hive0.mysite"]``, ``nornir_utils``' ``print_result(report)``, ``report.failed`` and
    ``report.failed_hosts`` work as on any ``nr.run()`` result. A host's MultiResult is the phase
    (``[0]``: its roll-up) followed by one Result per step it ran, carrying changed, failed, diff (secrets
    already hidden), result (what changed, or why it failed), exception, and the HostOutcome as ``.outcome``.
    """

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
    warnings: list[str] = field(default_factory=list)  # the site's warnings (FILE:LINE: KEY: ...), see --strict

    def __post_init__(self) -> None:
        self.name = self.phase  # AggregatedResult's task name
        self._built: tuple[Any, ...] = ()

    # -- the Nornir view: the dict's items are rebuilt from outcomes whenever those changed -------------------
    def _sync(self) -> None:
        """Outcomes are assigned or appended to as the run goes; the dict follows them on every read."""
        key = (id(self.outcomes), len(self.outcomes), tuple(self.hosts), self.phase)
        if key == self._built:
            return
        self.name = self.phase
        dict.clear(self)
        dict.update(self, self._nornir_results())
        self._built = key

    def _nornir_results(self) -> dict[str, MultiResult]:
        """host -> MultiResult(phase): the roll-up first, then one Result per step; hosts carry only a name."""
        by_host: dict[str, list[HostOutcome]] = {}
        for o in self.outcomes:
            by_host.setdefault(o.host, []).append(o)
        results: dict[str, MultiResult] = {}
        for row in self.summaries():
            host = Host(row.host)  # never the inventory's Host: its data may hold passwords
            multi = MultiResult(self.phase)
            failed = row.status in (FAILED, UNREACHABLE)
            roll_up = Result(host=host, result=_roll_up_text(row), changed=row.changed > 0, failed=failed,
                             exception=_exception(row.status, row.error), summary=row,
                             severity_level=logging.ERROR if failed else logging.INFO)
            roll_up.name = self.phase  # type: ignore[assignment]  # nornir types Result.name as None
            multi.append(roll_up)
            for o in by_host.get(row.host, []):
                step = Result(host=host, result=_step_text(o), changed=bool(o.changes),
                              diff="\n".join(c.diff.rstrip("\n") for c in o.changes if c.diff),
                              failed=o.status in (FAILED, UNREACHABLE), exception=_exception(o.status, o.error),
                              severity_level=logging.ERROR if o.status in (FAILED, UNREACHABLE) else logging.INFO,
                              outcome=o)
                step.name = o.step  # type: ignore[assignment]
                multi.append(step)
            results[row.host] = multi
        return results

    def __getitem__(self, host: str) -> MultiResult:
        self._sync()
        return super().__getitem__(host)

    def __missing__(self, host: str) -> MultiResult:
        """`report["p-hive0"]`: a short name works when it names exactly one host, as -l does."""
        matches = [name for name in dict.keys(self) if name.split(".", 1)[0] == host]
        if len(matches) == 1:
            return dict.__getitem__(self, matches[0])
        raise KeyError(host)

    def __iter__(self) -> Iterator[str]:
        self._sync()
        return super().__iter__()

    def __len__(self) -> int:
        self._sync()
        return super().__len__()

    def __contains__(self, host: object) -> bool:
        self._sync()
        return super().__contains__(host)

    def keys(self) -> dict_keys[str, MultiResult]:
        """Host names, in site order."""
        self._sync()
        return super().keys()

    def values(self) -> dict_values[str, MultiResult]:
        """Each host's MultiResult."""
        self._sync()
        return super().values()

    def items(self) -> dict_items[str, MultiResult]:
        """(host, MultiResult) pairs, as print_result reads them."""
        self._sync()
        return super().items()

    def get(self, host: str, default: Any = None) -> Any:
        """The host's MultiResult (short names work), or default."""
        try:
            return self[host]
        except KeyError:
            return default

    def __eq__(self, other: object) -> bool:
        """Two reports are equal when they record the same run (the derived dict follows from that)."""
        if not isinstance(other, RunReport):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

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
    def failed_hosts(self) -> dict[str, MultiResult]:
        """Nornir's: host -> MultiResult of every host that failed a step or could not be reached."""
        self._sync()
        return {h: r for h, r in dict.items(self) if r.failed}

    @property
    def unreachable_hosts(self) -> list[str]:
        """Hosts that could not be reached."""
        return [s.host for s in self.summaries() if s.status == UNREACHABLE]

    @property
    def ok(self) -> bool:
        """True when no host failed or was unreachable and the run itself did not stop on an error."""
        return not self.error_exit and all(s.status not in (FAILED, UNREACHABLE) for s in self.summaries())

    @property
    def exit_code(self) -> int:
        """Documented exit code: a run-level error first, then failures outrank unreachable hosts."""
        if self.error_exit:
            return self.error_exit
        statuses = {s.status for s in self.summaries()}
        if FAILED in statuses:
            return EXIT_FAILED
        if UNREACHABLE in statuses:
            return EXIT_UNREACHABLE
        return EXIT_OK

    def failure_lines(self) -> list[str]:
        """One `error: HOST: STATUS at step STEP: reason` line per failed or unreachable host (stderr, cron mail)."""
        return [f"error: {s.host}: {s.status} at step {s.failed_step}: {_flat(s.error)}"
                for s in self.summaries() if s.status in (FAILED, UNREACHABLE)]

    def changes(self) -> list[tuple[str, str, str, str]]:
        """(host, step, what, diff) for every change, for --diff and notebooks."""
        return [(o.host, o.step, c.summary + (" (assumed)" if c.assumed else ""), c.diff)
                for o in self.outcomes for c in o.changes]

    def to_dict(self) -> dict[str, Any]:
        """Machine-readable report (--json)."""
        return {
            "phase": self.phase, "stage": self.stage, "check": self.check, "started_at": self.started_at,
            "seconds": self.seconds, "exit_code": self.exit_code, "changed": self.changed,
            "resumed_from": self.resumed_from, "error": self.error, "warnings": list(self.warnings),
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


def _flat(text: str) -> str:
    """A failure reason on one line: cron mail and terminals read it, a traceback never reaches it."""
    return " ".join(text.split())[:300] or "(no reason recorded)"


def _roll_up_text(row: HostSummary) -> str:
    """MultiResult[0].result: the host's line of the summary table."""
    text = f"{row.status}: {row.ok} step(s) ok, {row.changed} change(s), {row.seconds:.1f}s"
    if row.failed_step:
        text += f"; {row.status} at step {row.failed_step}: {_one_line(row.error)}"
    return text


def _step_text(o: HostOutcome) -> str:
    """A step's Result.result: what changed (or would), the handlers it ran, why it failed; else its status."""
    lines = [c.summary + (" (assumed)" if c.assumed else "") for c in o.changes]
    if o.handlers_run:
        lines.append(f"handlers: {', '.join(o.handlers_run)}")
    if o.error:
        lines.append(o.error.rstrip())
    return "\n".join(lines) or o.status


def _exception(status: str, error: str) -> BaseException | None:
    """Result.exception: the run keeps reasons as text (JSON, journal), so the exception is rebuilt from it."""
    if status == FAILED:
        return StepFailed(error)
    if status == UNREACHABLE:
        return ConnectionError(error)
    return None


def _one_line(text: str) -> str:
    """Errors can be multi-line; the table shows the first meaningful line."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:160]
    return ""
