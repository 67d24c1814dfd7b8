"""Live progress as a Nornir processor: a status line of the hosts still busy on a terminal, plain lines elsewhere."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

from hive_nornir.engine.outcome import CHANGED, FAILED, OK, UNREACHABLE, HostOutcome

if TYPE_CHECKING:
    from nornir.core.inventory import Host
    from nornir.core.task import AggregatedResult, MultiResult, Task
    from rich.console import Console, RenderableType
    from rich.live import Live

_COLOUR = {OK: "32", CHANGED: "33", FAILED: "31", UNREACHABLE: "35"}
STATUS_MARK = "still running"  # the words of the live status line (tests look for them)


class Progress:
    """Prints a line per host per step as it finishes; thread-safe, never raises into the run.

    With ``live`` (a terminal that can move its cursor) a transient status line at the bottom names the hosts
    still on the current step and for how long, and host lines are shortened to the terminal width unless
    ``full`` (--diff, -v) asks for every character; without it the lines are exactly the plain ones.
    """

    def __init__(self, stream: TextIO, colour: bool, show_diff: bool = False, quiet: bool = False,
                 live: bool = False, full: bool = False) -> None:
        self.stream = stream
        self.colour = colour
        self.show_diff = show_diff
        self.quiet = quiet
        self.live = live
        self.full = full or show_diff
        self._lock = threading.Lock()
        self._step = ""
        self._running: dict[str, float] = {}  # host -> monotonic start, for the step in progress
        self._console: Console | None = None
        self._live: Live | None = None

    # -- output ---------------------------------------------------------------------------------------------
    def _write(self, text: str, shorten: bool = False) -> None:
        """One or more lines; through the live display while it is up, so the status line stays at the bottom."""
        console = self._console
        try:
            if console is not None and self._live is not None:
                from rich.text import Text

                for line in text.split("\n"):
                    if shorten and not self.full:  # one host, one screen line; the rest is in --diff/-v/JSON
                        console.print(Text.from_ansi(line), no_wrap=True, overflow="ellipsis", crop=True)
                    else:  # whole: the terminal wraps it, a copy and paste gets it all
                        console.print(Text.from_ansi(line), soft_wrap=True)
                return
            with self._lock:
                self.stream.write(text + "\n")
                self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe must not fail hosts

    def _paint(self, status: str, text: str) -> str:
        return f"\033[{_COLOUR.get(status, '0')}m{text}\033[0m" if self.colour else text

    # -- the live status line -------------------------------------------------------------------------------
    def _start_live(self) -> None:
        """Bring up the transient status line (rich, imported only when a terminal asks for it)."""
        if self._live is not None:
            return
        try:
            from rich.console import Console
            from rich.live import Live

            self._console = Console(file=self.stream, force_terminal=True, no_color=not self.colour,
                                    color_system="standard" if self.colour else None, highlight=False,
                                    markup=False, emoji=False)
            self._live = Live(_StatusLine(self), console=self._console, transient=True, refresh_per_second=4,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start()
        except Exception:  # noqa: BLE001 - progress must never fail a run: fall back to plain lines
            self._live = None
            self._console = None

    def _stop_live(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            with contextlib.suppress(Exception):  # a closed terminal must not fail the run
                live.stop()
        self._console = None

    def close(self) -> None:
        """Take the status line down (the run ended, or was interrupted) and give the cursor back."""
        self._stop_live()
        with self._lock:
            self._running.clear()

    def status_text(self, now: float | None = None) -> str:
        """The status line: the step and the hosts still on it, longest first, with their time so far."""
        now = time.monotonic() if now is None else now
        with self._lock:
            running = sorted(self._running.items(), key=lambda item: item[1])
            step = self._step
        if not running:
            return ""
        hosts = ", ".join(f"{host} {now - started:.0f}s" for host, started in running)
        return f"{step}: {len(running)} {STATUS_MARK}: {hosts}"

    # -- Nornir processor hooks -----------------------------------------------------------------------------
    def task_started(self, task: Task) -> None:
        """Step header (and, on a terminal, the status line under it)."""
        if self.quiet:
            return
        if task.name == "close_connections_task":
            self._stop_live()
            return
        with self._lock:
            self._step = task.name
            self._running.clear()
        self._write(f"== {task.name}")
        if self.live:
            self._start_live()

    def task_completed(self, task: Task, result: AggregatedResult) -> None:
        """The step is over: the status line goes; the summary comes at the end of the phase."""
        if task.name != "close_connections_task":
            self._stop_live()

    def task_instance_started(self, task: Task, host: Host) -> None:
        """The host is on the step now: the status line counts its time."""
        if self.live and not self.quiet and task.name != "close_connections_task":
            with self._lock:
                self._running[str(host.name)] = time.monotonic()

    def task_instance_completed(self, task: Task, host: Host, result: MultiResult) -> None:
        """One line per host: status, changes, time, and the reason when it failed."""
        with self._lock:
            self._running.pop(str(host.name), None)
        outcome = result[0].result if result else None
        if self.quiet or not isinstance(outcome, HostOutcome):
            return
        line = f"   {outcome.host:<24} {self._paint(outcome.status, outcome.status):<9} {outcome.seconds:6.2f}s"
        if outcome.changes:
            line += "  " + "; ".join(c.summary + (" (assumed)" if c.assumed else "") for c in outcome.changes)
        if outcome.handlers_run:
            line += f"  [handlers: {', '.join(outcome.handlers_run)}]"
        self._write(line, shorten=True)
        if outcome.error:
            self._write(f"      {outcome.error.strip().splitlines()[0] if outcome.error.strip() else ''}",
                        shorten=True)
        if self.show_diff:
            for change in outcome.changes:
                if change.diff:
                    self._write("\n".join("      " + d for d in change.diff.rstrip().splitlines()))

    def subtask_instance_started(self, task: Task, host: Host) -> None:
        """Steps do not use Nornir subtasks."""

    def subtask_instance_completed(self, task: Task, host: Host, result: MultiResult) -> None:
        """Steps do not use Nornir subtasks."""


class _StatusLine:
    """What rich's Live redraws four times a second: a spinner and Progress.status_text()."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._spinner: Any = None

    def __rich__(self) -> RenderableType:
        from rich.spinner import Spinner
        from rich.text import Text

        text = self.progress.status_text()
        if not text:
            return Text("")
        if self._spinner is None:
            self._spinner = Spinner("line")
        self._spinner.update(text=Text(text, no_wrap=True, overflow="ellipsis"))
        return self._spinner
