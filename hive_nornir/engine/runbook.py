"""Runbooks: a phase is an ordered list of steps; each step is one parallel Nornir run over selected hosts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nornir.core.task import Result, Task

from hive_nornir.engine.context import HostContext, RunState
from hive_nornir.engine.errors import BadInput, StepFailed
from hive_nornir.engine.handlers import handler_command
from hive_nornir.engine.outcome import CHANGED, FAILED, OK, UNREACHABLE, HostOutcome
from hive_nornir.engine.probe import ProbeError
from hive_nornir.primitives.templates import project_templates
from hive_nornir.site.rules import suggest
from hive_nornir.transport.errors import ConnectError, TransportError

if TYPE_CHECKING:
    from nornir.core import Nornir
    from nornir.core.inventory import Host

log = logging.getLogger(__name__)

TaskFn = Callable[..., None]


@dataclass(frozen=True)
class Step:
    """A task plus where it runs: host groups, an optional condition on host data, tags, serial batches."""

    name: str
    task: TaskFn
    groups: tuple[str, ...] = ("servers",)
    when: Callable[[Host], bool] | None = None
    tags: tuple[str, ...] = ()
    serial: int | None = None
    timeout: float | None = None
    flush_handlers: bool = False  # run pending handlers right after this step (default: once, at phase end)
    params: dict[str, Any] = field(default_factory=dict)

    def selects(self, host: Host) -> bool:
        """True when the host is in one of the step's groups and passes its condition."""
        in_group = any(g in host.groups for g in self.groups) or "all" in self.groups
        return in_group and (self.when is None or bool(self.when(host)))


@dataclass(frozen=True)
class Runbook:
    """A named phase: ordered steps."""

    name: str
    steps: tuple[Step, ...]
    description: str = ""

    def all_tags(self) -> set[str]:
        """Every tag a -T option may name."""
        return {t for s in self.steps for t in (s.name, *s.tags)}

    def select_steps(self, tags: Sequence[str] | None) -> list[Step]:
        """Steps matching -T (by tag or step name); `always` steps always run. Unknown tags are bad input.

        None selects every step; an empty selection (`-T ''`, `-T ,`) is bad input, never "everything".
        """
        if tags is None:
            return list(self.steps)
        if not tags:
            raise BadInput(f"-T/--tags: empty selection; name at least one tag or step of phase {self.name} "
                           f"(or leave -T out to run every step): "
                           f"{', '.join(sorted(self.all_tags()))}")
        unknown = sorted(set(tags) - self.all_tags())
        if unknown:
            known = sorted(self.all_tags())
            raise BadInput(
                f"-T/--tags: unknown tag(s) {', '.join(t + suggest(t, known) for t in unknown)} for phase "
                f"{self.name}; known: {', '.join(known)}"
            )
        wanted = set(tags)
        return [s for s in self.steps if wanted & {s.name, *s.tags} or "always" in s.tags]


def _cached_round_trips(task: Task) -> int:
    """Round trips so far on the host's live cached session (0 when a new one will be opened)."""
    cached = task.host.connections.get("hive_ssh")
    session = getattr(cached, "connection", None)
    return int(session.round_trips) if session is not None and session.is_alive() else 0


def execute_step(task: Task, step: Step, run: RunState) -> Result:
    """Nornir task body: run one step on one host and turn every failure into a readable outcome."""
    outcome = HostOutcome(host=str(task.host.name), step=step.name, started_at=time.time())
    started = time.monotonic()
    ctx = HostContext(task.host, run, outcome, step.timeout)
    before = 0
    try:
        # no connect here: the task connects on first use (ssh-connection waits for hosts still booting)
        before = _cached_round_trips(task)
        with project_templates(run.template_dirs):
            step.task(ctx, **step.params)
        if step.flush_handlers and not run.check:
            _run_handlers(ctx)
        outcome.status = CHANGED if outcome.changes else OK
    except ConnectError as exc:  # only connect-time errors and dead peers mean unreachable
        outcome.status, outcome.error = UNREACHABLE, str(exc)
    except TransportError as exc:  # the host answers: a timeout, sudo, a failed upload or a killed command
        outcome.status, outcome.error = FAILED, str(exc)
    except (StepFailed, ProbeError) as exc:
        outcome.status, outcome.error = FAILED, str(exc)
    except Exception as exc:  # noqa: BLE001 - a bug in a task must fail that host, not the run
        run.crashes.record(exc, outcome.host)  # the traceback is logged once per step, with every host it hit
        outcome.status, outcome.error = FAILED, f"{type(exc).__name__}: {exc}"
    outcome.seconds = round(time.monotonic() - started, 3)
    if ctx._session is not None:
        outcome.round_trips = ctx._session.round_trips - before
    return Result(host=task.host, result=outcome, changed=bool(outcome.changes),
                  failed=outcome.status in (FAILED, UNREACHABLE))


def _run_handlers(ctx: HostContext) -> None:
    """Run every pending handler of this host once, in notification order, then forget it."""
    journal = ctx.run_state.handlers
    for name in journal.pending(ctx.name):
        ctx.run(handler_command(name))
        journal.done(ctx.name, name)
        ctx.outcome.handlers_run.append(name)


def run_steps(nr: Nornir, steps: Sequence[Step], run: RunState,
              on_step_done: Callable[[Step, list[HostOutcome]], None] | None = None) -> list[HostOutcome]:
    """Run steps in order; hosts that fail or are unreachable drop out of later steps (Nornir's failed_hosts)."""
    outcomes: list[HostOutcome] = []
    for step in steps:
        targets = nr.filter(filter_func=step.selects)
        names = [n for n in targets.inventory.hosts if n not in nr.data.failed_hosts]
        step_outcomes: list[HostOutcome] = []
        for batch in _batches(names, step.serial):
            part = targets.filter(filter_func=lambda h, b=frozenset(batch): h.name in b)
            result = part.run(task=execute_step, name=step.name, step=step, run=run)
            for host_name in batch:
                if host_name in result:
                    step_outcomes.append(result[host_name][0].result)
        outcomes.extend(step_outcomes)
        run.crashes.report(step.name, log)
        if on_step_done is not None:
            on_step_done(step, step_outcomes)
    if not run.check:
        outcomes.extend(_flush_handlers(nr, run))
    return outcomes


def _flush(ctx: HostContext) -> None:
    """The handlers step: everything it does happens in _run_handlers."""
    _run_handlers(ctx)


def _flush_handlers(nr: Nornir, run: RunState) -> list[HostOutcome]:
    """Once per host at the end of the phase: every handler notified by any step (or left by a failed run)."""
    owed = [n for n in nr.inventory.hosts if n not in nr.data.failed_hosts and run.handlers.pending(n)]
    if not owed:
        return []
    step = Step("handlers", _flush, groups=("all",), flush_handlers=True)
    part = nr.filter(filter_func=lambda h: h.name in owed)
    result = part.run(task=execute_step, name="handlers", step=step, run=run)
    run.crashes.report(step.name, log)
    return [result[n][0].result for n in owed if n in result]


def _batches(names: list[str], size: int | None) -> list[list[str]]:
    """Serial batches keep a rolling change from touching every host at once."""
    if not names:
        return []
    if not size or size >= len(names):
        return [names]
    return [names[i:i + size] for i in range(0, len(names), size)]
