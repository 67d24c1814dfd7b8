"""Live progress as a Nornir processor: coloured on a terminal, plain lines for cron and pipes."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, TextIO

from hive_nornir.engine.outcome import CHANGED, FAILED, OK, UNREACHABLE, HostOutcome

if TYPE_CHECKING:
    from nornir.core.inventory import Host
    from nornir.core.task import AggregatedResult, MultiResult, Task

_COLOUR = {OK: "32", CHANGED: "33", FAILED: "31", UNREACHABLE: "35"}


class Progress:
    """Prints a line per host per step as it finishes; thread-safe, never raises into the run."""

    def __init__(self, stream: TextIO, colour: bool, show_diff: bool = False, quiet: bool = False) -> None:
        self.stream = stream
        self.colour = colour
        self.show_diff = show_diff
        self.quiet = quiet
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        with self._lock:
            try:
                self.stream.write(text + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed pipe must not fail hosts

    def _paint(self, status: str, text: str) -> str:
        return f"\033[{_COLOUR.get(status, '0')}m{text}\033[0m" if self.colour else text

    def task_started(self, task: Task) -> None:
        """Step header."""
        if not self.quiet and task.name != "close_connections_task":
            self._write(f"== {task.name}")

    def task_completed(self, task: Task, result: AggregatedResult) -> None:
        """Nothing: the summary comes at the end of the phase."""

    def task_instance_started(self, task: Task, host: Host) -> None:
        """Nothing: one line per finished host is enough."""

    def task_instance_completed(self, task: Task, host: Host, result: MultiResult) -> None:
        """One line per host: status, changes, time, and the reason when it failed."""
        outcome = result[0].result if result else None
        if self.quiet or not isinstance(outcome, HostOutcome):
            return
        line = f"   {outcome.host:<24} {self._paint(outcome.status, outcome.status):<9} {outcome.seconds:6.2f}s"
        if outcome.changes:
            line += "  " + "; ".join(c.summary + (" (assumed)" if c.assumed else "") for c in outcome.changes)
        if outcome.handlers_run:
            line += f"  [handlers: {', '.join(outcome.handlers_run)}]"
        if outcome.error:
            line += f"\n      {outcome.error.strip().splitlines()[0] if outcome.error.strip() else ''}"
        self._write(line)
        if self.show_diff:
            for change in outcome.changes:
                if change.diff:
                    self._write("\n".join("      " + d for d in change.diff.rstrip().splitlines()))

    def subtask_instance_started(self, task: Task, host: Host) -> None:
        """Steps do not use Nornir subtasks."""

    def subtask_instance_completed(self, task: Task, host: Host, result: MultiResult) -> None:
        """Steps do not use Nornir subtasks."""
