"""HostContext: what a task sees on one host; it batches probes, applies plans and records changes."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_nornir.engine.apply import Batch, apply_batch
from hive_nornir.engine.crashes import Crashes
from hive_nornir.engine.errors import CommandFailed, StepFailed
from hive_nornir.engine.handlers import HandlerJournal
from hive_nornir.engine.outcome import Change, HostOutcome
from hive_nornir.engine.passes import waits
from hive_nornir.engine.probe import batch_script, last_section, split_output
from hive_nornir.facts import FACTS_SCRIPT, Facts, parse_facts
from hive_nornir.primitives.base import Plan, Primitive
from hive_nornir.transport.describe import describe_command
from hive_nornir.transport.errors import CommandTimeout

if TYPE_CHECKING:
    from nornir.core import Nornir
    from nornir.core.inventory import Host

    from hive_nornir.engine.protocols import StageHost, TaskContext
    from hive_nornir.transport.session import CommandResult, SSHSession

PROBE_TIMEOUT = 120.0
APPLY_TIMEOUT = 900.0


@dataclass
class RunState:
    """Shared by every host of one run: mode flags, facts cache, handler journal, the stage's state dir."""

    nornir: Nornir
    check: bool = False
    diff: bool = False
    context_dir: Path | None = None
    handlers: HandlerJournal = field(default_factory=lambda: HandlerJournal(None))
    facts: dict[str, Facts] = field(default_factory=dict)
    predicted: set[str] = field(default_factory=set)  # hosts with a change predicted in check mode
    shared: dict[str, Any] = field(default_factory=dict)  # cross-host values (e.g. a swarm join token)
    lock: threading.Lock = field(default_factory=threading.Lock)
    all_hosts: dict[str, Host] | None = None  # the whole stage, even when --limit narrows the run
    crashes: Crashes = field(default_factory=Crashes)  # tasks that raised: one traceback per step, not per host
    template_dirs: tuple[Path, ...] = ()  # the project's templates/, searched before the package's
    batch_changes: bool = True  # False: a step's changes one by one, each followed by a new probe of the rest

    def stage_hosts(self) -> dict[str, Host]:
        """Every host of the stage: a hosts file or a peer list must not shrink because of --limit."""
        return dict(self.all_hosts if self.all_hosts is not None else self.nornir.inventory.hosts)


class HostContext:
    """The API tasks are written against: ensure primitives, run commands, read facts and host data."""

    def __init__(self, host: Host, run: RunState, outcome: HostOutcome, timeout: float | None = None) -> None:
        self.host = host
        self.run_state = run
        self.outcome = outcome
        self.apply_timeout = timeout or APPLY_TIMEOUT
        self._session: SSHSession | None = None

    # -- host, facts, mode ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Inventory name of the host."""
        return str(self.host.name)

    @property
    def check(self) -> bool:
        """Check mode: probe and plan, never change the host."""
        return self.run_state.check

    @property
    def session(self) -> SSHSession:
        """The host's SSH session, reconnected if it died (reboot, sshd restart)."""
        if self._session is None or not self._session.is_alive():
            from hive_nornir.transport.plugin import session_for

            self._session = session_for(self.host, self.run_state.nornir.config)
        return self._session

    @property
    def facts(self) -> Facts:
        """Facts from one round trip, cached for the run and refreshed after a change."""
        cached = self.run_state.facts.get(self.name)
        if cached is None:
            result = self.session.run(FACTS_SCRIPT, timeout=PROBE_TIMEOUT)
            if not result.ok:
                raise CommandFailed("gather facts", result.exit_status, result.stderr)
            cached = parse_facts(result.stdout)
            self.run_state.facts[self.name] = cached
        return cached

    def var(self, key: str, default: Any = None) -> Any:
        """Host data with group/defaults inheritance; a None default never raises (nornir trap)."""
        return self.host.get(key, default)

    # -- the stage and the run ----------------------------------------------------------------------
    def stage_hosts(self) -> dict[str, Host]:
        """Every host of the stage, even when --limit narrows the run (hosts files, peer lists)."""
        return self.run_state.stage_hosts()

    @property
    def context_dir(self) -> Path | None:
        """The stage's state directory on the controller (secrets, CA, addons)."""
        return self.run_state.context_dir

    @property
    def shared(self) -> dict[str, Any]:
        """Values shared by every host of the run (a swarm join token); guard with `lock`."""
        return self.run_state.shared

    @property
    def lock(self) -> threading.Lock:
        """The run-wide lock for `shared` and the stage's files."""
        return self.run_state.lock

    def session_to(self, host: StageHost) -> SSHSession:
        """A session to another stage host with this run's settings (e.g. swarm's first_hive)."""
        from hive_nornir.transport.plugin import session_for

        return session_for(self.run_state.stage_hosts()[host.name], self.run_state.nornir.config)

    # -- idempotent changes ------------------------------------------------------------------------
    def ensure(self, primitives: Sequence[Primitive]) -> bool:
        """Bring every primitive to its desired state; one probe exec when nothing changes.

        Each pass plans every pending primitive before its first change (a refusal, Plan.error, of a later one
        stops the step before an earlier one changes the host), then applies every change that does not depend
        on another change of the pass in ONE exec, which also probes again the primitives whose probe those
        changes can alter (`Primitive.reads`/`writes`); those are planned in the next pass."""
        pending = list(primitives)
        if not pending:
            return False
        facts = self.facts
        outputs = self._probe(pending, facts)
        changed_any = False
        while pending:
            plans = [p.plan(facts, out) for p, out in zip(pending, outputs, strict=True)]
            for primitive, plan in zip(pending, plans, strict=True):
                if plan.error:
                    raise StepFailed(f"{primitive.ident}: {plan.error}")
            changes: list[tuple[Primitive, Plan]] = []
            deferred: list[Primitive] = []
            written: set[str] = set()
            for primitive, plan in zip(pending, plans, strict=True):
                if not self.check and self._stale(primitive, plan, written, deferred):
                    deferred.append(primitive)  # an earlier change of this pass may alter what it sees
                    continue
                if plan.missing and not self._can_assume():
                    raise StepFailed(f"{primitive.ident}: {plan.missing}")
                if not plan.changed and not plan.missing:
                    continue
                changed_any = True
                if self.check:
                    self._record(primitive, plan)
                    self.run_state.predicted.add(self.name)
                    self.notify(*primitive.notify)
                    continue
                changes.append((primitive, plan))
                written |= plan.writes if plan.writes is not None else primitive.writes()
            if not changes:
                return changed_any
            outputs = self._apply(Batch(changes, deferred), facts)
            pending = deferred
        return changed_any

    def _stale(self, primitive: Primitive, plan: Plan, written: set[str], deferred: list[Primitive]) -> bool:
        """Whether the primitive waits for a new probe (engine/passes.py); one by one, all after a change wait."""
        if not self.run_state.batch_changes:
            return bool(written or deferred)
        return waits(primitive, written, deferred, plan.writes if plan.changed else None)

    def _apply(self, batch: Batch, facts: Facts) -> list[str]:
        """Journal the handlers, run the batch; record the changes that began, withdraw the notifications of
        those that never ran (handlers stay exact), drop the facts."""
        owed = set(self.run_state.handlers.pending(self.name))
        for primitive, _plan in batch.changes:  # journal first: a connection lost after a change keeps its reload
            self.notify(*primitive.notify)
        try:
            return apply_batch(self.session, batch, facts, self.apply_timeout, PROBE_TIMEOUT)
        finally:
            ran = batch.changes[:batch.started]
            for primitive, plan in ran:
                self._record(primitive, plan)
            notified = {h for p, _plan in ran for h in p.notify}
            never = [h for p, _plan in batch.changes[batch.started:] for h in p.notify
                     if h not in owed and h not in notified]
            if never:
                self.run_state.handlers.withdraw(self.name, never)
            self.run_state.facts.pop(self.name, None)

    def _record(self, primitive: Primitive, plan: Plan) -> None:
        """One change (or predicted one) in the outcome."""
        assumed = bool(plan.missing)
        diff = f"(assumed: {plan.missing})" if assumed and not plan.diff else plan.diff
        self.outcome.changes.append(Change(primitive.ident, plan.summary or primitive.ident, diff, assumed))

    def _can_assume(self) -> bool:
        """A missing prerequisite is fine in check mode when an earlier change on this host would provide it."""
        return self.check and self.name in self.run_state.predicted

    def _probe(self, primitives: Sequence[Primitive], facts: Facts) -> list[str]:
        script, marker = batch_script(primitives, facts)
        try:
            result = self.session.run(script, timeout=PROBE_TIMEOUT)
        except CommandTimeout as e:  # name the primitive whose probe hung, not the script's first line
            index = last_section(e.stdout, marker)
            what = primitives[index].ident if index is not None else "the batched probe"
            raise CommandTimeout(e.host, e.port, f"probe of {what} exceeded its {PROBE_TIMEOUT:g}s timeout and was "
                                 "abandoned", what, e.stdout, e.stderr) from e
        return split_output(result.stdout, marker, len(primitives))

    def changed(self, ident: str, summary: str, diff: str = "") -> None:
        """Record a change made (or predicted) by an imperative task."""
        self.outcome.changes.append(Change(ident, summary, diff))
        if self.check:
            self.run_state.predicted.add(self.name)
        else:
            self.run_state.facts.pop(self.name, None)

    def notify(self, *handlers: str) -> None:
        """Queue handlers; in check mode they are only reported."""
        if not handlers:
            return
        if self.check:
            for name in handlers:
                if name not in self.outcome.handlers_run:
                    self.outcome.handlers_run.append(name)
            return
        self.run_state.handlers.notify(self.name, handlers)

    # -- commands ------------------------------------------------------------------------------------
    def run(self, command: str, *, sudo: bool = True, timeout: float | None = None, check: bool = True,
            stdin: bytes | str | None = None) -> CommandResult:
        """Run a command now (tasks only call this for reads, or after checking ctx.check)."""
        result = self.session.run(command, sudo=sudo, timeout=timeout or self.apply_timeout, stdin=stdin)
        if check and not result.ok:
            raise CommandFailed(f"`{describe_command(command, 80)}`", result.exit_status,
                                result.stderr or result.stdout)
        return result


def _satisfies_the_protocol(ctx: HostContext) -> TaskContext:
    """mypy proves here that HostContext is a TaskContext (tests/unit/fake_host.py proves it for the fake)."""
    return ctx
