"""The Python API for scripts, notebooks and the CLI: load a site, run a phase or a task, get a RunReport."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from nornir import InitNornir
from nornir.core import Nornir
from nornir.core.inventory import Inventory

from hive_nornir.engine.context import HostContext, RunState
from hive_nornir.engine.errors import BadInput
from hive_nornir.engine.handlers import HandlerJournal
from hive_nornir.engine.journal import RunJournal
from hive_nornir.engine.lock import StageLock
from hive_nornir.engine.outcome import FAILED, UNREACHABLE, HostOutcome
from hive_nornir.engine.runbook import Runbook, Step, run_steps
from hive_nornir.facts import Facts
from hive_nornir.phases import load_runbook
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.templates import TemplateError, environment, explain, search_path
from hive_nornir.report.progress import Progress
from hive_nornir.report.run_report import RunReport
from hive_nornir.site import Site, load_site
from hive_nornir.site.project import announce, find_project, project_of_site_file
from hive_nornir.site.rules import suggest
from hive_nornir.tasks.services.stage import DESTROY_KEY, SITE_KEY

RUN_TASK_TIMEOUT = 300.0  # an ad-hoc task's command; a phase step's default is the engine's APPLY_TIMEOUT (900 s)
site_log = logging.getLogger("hive_nornir.site")  # site warnings: WARNING records, one per SiteIssue


@dataclass(frozen=True)
class Selection:
    """A phase's selected steps, each with the hosts it would run on (`run --list-steps/--list-hosts`)."""

    runbook: Runbook
    steps: tuple[tuple[Step, tuple[str, ...]], ...]

    @property
    def hosts(self) -> list[str]:
        """Every host some selected step runs on, in site order."""
        return list(dict.fromkeys(h for _, hosts in self.steps for h in hosts))

    @property
    def tags(self) -> list[str]:
        """The tags of the selected steps (what -T may name among them), sorted."""
        return sorted({t for step, _ in self.steps for t in step.tags})


class Hive:
    """One site and one stage: the object a runbook script or a notebook holds on to."""

    def __init__(self, root: str | Path = ".", stage: str = "private", site_file: str | Path | None = None,
                 num_workers: int = 20, strict: bool = False) -> None:
        # the project root is found the way git finds a repository; the embedded lab site is announced on stderr
        project = project_of_site_file(site_file, root) if site_file else find_project(root)
        announce(project)
        self.root = project.root
        self.site_path = project.site_file
        # what hive-builder accepts but does surprisingly: logged once here (a notebook sees it), refused if strict
        self.strict = strict
        self.site: Site = load_site(self.site_path, root_dir=self.root, strict=strict)
        for warning in self.site.warnings:
            site_log.warning("%s", warning)
        if stage not in self.site.stages:
            raise BadInput(
                f"{self.site_path}: stage {stage!r} is not defined; defined stages: "
                f"{', '.join(self.site.stages) or 'none'}"
            )
        self.stage = stage
        self.context_dir = self.root / ".hive" / stage
        self.num_workers = num_workers

    @property
    def templates_dir(self) -> Path:
        """The project's own templates (ROOT/templates, beside inventory/), searched before hive_nornir's."""
        return self.root / "templates"

    def render(self, template: str, *, limit: str | Sequence[str] | None = None, **variables: Any) -> dict[str, str]:
        """Preview a template on each host as nornir_jinja2's template_file renders it (`host` is the Nornir
        host), found the way Template finds it: ROOT/templates first, then hive_nornir's. Nothing is contacted."""
        from nornir_jinja2.plugins.tasks import template_file

        path = search_path((self.templates_dir,))
        result = self.limit(self.nornir(), limit).run(task=template_file, template=template,
                                                       jinja_env=environment(path), **variables)
        failed = {h: r.exception for h, r in result.items() if r.failed}
        if failed:
            raise TemplateError("; ".join(f"{h}: {explain(e or RuntimeError('failed'), template, path)}"
                                          for h, e in failed.items()))
        return {h: str(r[0].result) for h, r in result.items()}

    def warnings(self) -> list[str]:
        """The site's warnings as `FILE:LINE: KEY: ...` lines (the CLI's stderr and the --json report)."""
        return [str(w) for w in self.site.warnings]

    def __repr__(self) -> str:
        return f"Hive(site={self.site.name!r}, stage={self.stage!r}, root={str(self.root)!r})"

    # -- inventory ------------------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any] | None:
        """The provider's state.json for this stage (None before build-infra); a broken one is a StateError."""
        from hive_nornir.inventory import read_state

        return read_state(self.context_dir)

    def require_state(self) -> None:
        """Lab hosts are only reachable through the ports build-infra recorded; never guess an address."""
        stage = self.site.stages[self.stage]
        if stage.provider != "docker":
            return
        recorded = set((self.state or {}).get("hosts", {}))
        missing = [h for h in self.hosts() if h not in recorded]
        if missing:
            raise BadInput(
                f"stage {self.stage} (provider docker) has no recorded address for {', '.join(missing)}: "
                f"run `python -m hive_nornir -s {self.stage} run build-infra` first"
            )

    def nornir(self) -> Nornir:
        """A fresh Nornir over this stage's hosts (threaded runner, no nornir.log in the cwd)."""
        return InitNornir(
            runner={"plugin": "threaded", "options": {"num_workers": self.num_workers}},
            inventory={"plugin": "HiveInventory",
                       "options": {"root_dir": str(self.root), "stage": self.stage,
                                   "site_file": str(self.site_path), "strict": self.strict}},
            logging={"enabled": False},
        )

    def inventory(self) -> Inventory:
        """The stage's Nornir inventory from the site already loaded: no InitNornir, so no plugin imports (netmiko,
        paramiko) for a command that only reads it (`inventory`, `hosts()`)."""
        from hive_nornir.inventory import build_inventory, read_state

        return build_inventory(self.site, self.stage, read_state(self.context_dir), context_dir=self.context_dir)

    def hosts(self) -> list[str]:
        """Host names of the stage, in site order."""
        return list(self.inventory().hosts)

    def limit(self, nr: Nornir, limit: str | Sequence[str] | None) -> Nornir:
        """Restrict to hosts or groups (`-l a,b`); short names (`p-hive0`) work; unknown names are bad input.

        None selects every host; an empty selection (`-l ''`, `-l ,`, []) is bad input, never "everything".
        """
        if limit is None:
            return nr
        wanted = self._limit_names(limit)
        hosts = nr.inventory.hosts
        short = {name.split(".")[0]: name for name in hosts}
        selected: set[str] = set()
        unknown = []
        for item in wanted:
            if item in hosts:
                selected.add(item)
            elif item in short:
                selected.add(short[item])
            elif item in nr.inventory.groups:
                selected.update(h for h, host in hosts.items() if item in host.groups)
            else:
                unknown.append(item)
        if unknown:
            raise BadInput(
                f"-l/--limit: unknown host or group "
                f"{', '.join(u + suggest(u, [*hosts, *short, *nr.inventory.groups]) for u in unknown)} "
                f"in stage {self.stage}; "
                f"hosts: {', '.join(hosts)}; groups: {', '.join(sorted(nr.inventory.groups))}"
            )
        return nr.filter(filter_func=lambda h: h.name in selected)

    def select(self, phase: str | Runbook, *, tags: Sequence[str] | None = None,
               limit: str | Sequence[str] | None = None) -> Selection:
        """What `run` would do with these -T/-l, from the inventory alone: no lock, no state, no connection."""
        runbook = phase if isinstance(phase, Runbook) else load_runbook(phase)
        nr = self.limit(self.nornir(), limit)
        hosts = nr.inventory.hosts
        return Selection(runbook, tuple((s, tuple(h for h in hosts if s.selects(hosts[h])))
                                        for s in runbook.select_steps(tags)))

    def _limit_names(self, limit: str | Sequence[str]) -> list[str]:
        """The names of a -l selection; none at all is bad input (checked before the lab state or any host)."""
        wanted = [w.strip() for w in (limit.split(",") if isinstance(limit, str) else limit) if w.strip()]
        if not wanted:
            raise BadInput(f"-l/--limit: empty selection {limit!r}; name at least one host or group of stage "
                           f"{self.stage}, or leave -l out to select every host")
        return wanted

    # -- running ----------------------------------------------------------------------------------------
    def run(self, phase: str | Runbook, *, tags: Sequence[str] | None = None,
            limit: str | Sequence[str] | None = None, check: bool = False, diff: bool = False,
            resume: bool = False, progress: Progress | None = None, destroy: bool = False) -> RunReport:
        """Run a phase (its name or a Runbook) under the stage lock, journalled for --resume; `destroy` (-D) asks
        the phases that support it (deploy-services, build-volumes) to remove what they made."""
        runbook = phase if isinstance(phase, Runbook) else load_runbook(phase)
        steps = runbook.select_steps(tags)
        if limit is not None:
            self._limit_names(limit)
        self.require_state()
        full = self.nornir()
        nr = self.limit(full, limit)
        journal = RunJournal(self.context_dir, runbook.name)
        selected_hosts = sorted(nr.inventory.hosts) if limit is not None else None
        selected_tags = sorted(set(tags)) if tags is not None else None
        resumed_from = ""
        if resume:
            names = [s.name for s in steps]
            resumed_from = journal.resume_from(names, selected_hosts, selected_tags)
            steps = steps[names.index(resumed_from):]
        report = RunReport(phase=runbook.name, stage=self.stage, check=check, resumed_from=resumed_from,
                           started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), warnings=self.warnings(),
                           hosts=[h for h in nr.inventory.hosts if any(s.selects(nr.inventory.hosts[h])
                                                                         for s in steps)])
        started = time.monotonic()
        with StageLock(self.context_dir):
            run = RunState(nornir=nr, check=check, diff=diff, context_dir=self.context_dir,
                           handlers=HandlerJournal(self.context_dir / "handlers.json"),
                           all_hosts=dict(full.inventory.hosts), template_dirs=(self.templates_dir,),
                           shared={SITE_KEY: self.site, DESTROY_KEY: destroy})  # read by the service phases
            if not check:
                journal.start(runbook.name, self.stage, check, [s.name for s in steps], selected_hosts,
                              selected_tags)

            def step_done(step: Step, outcomes: list[HostOutcome]) -> None:
                if not check:
                    journal.step_done(step.name, [o.host for o in outcomes if o.status in (FAILED, UNREACHABLE)])

            if progress is not None:
                nr = nr.with_processors([progress])
                run.nornir = nr
            try:
                report.outcomes = run_steps(nr, steps, run, step_done)
            finally:
                nr.close_connections(on_good=True, on_failed=True)
                if progress is not None:
                    progress.close()
            if not check:
                journal.finish()
        report.seconds = round(time.monotonic() - started, 2)
        return report

    def run_task(self, task: Callable[[HostContext], None] | Sequence[Primitive], *,
                 limit: str | Sequence[str] | None = None, check: bool = False, name: str = "task",
                 groups: tuple[str, ...] = ("all",), progress: Progress | None = None,
                 timeout: float = RUN_TASK_TIMEOUT) -> RunReport:
        """Run one task (a function of HostContext, or a list of primitives) on selected hosts.

        `timeout`: seconds each command of the task may run (default 300) before that host fails with the
        command named; a host that stops answering is unreachable within seconds whatever the timeout."""
        if callable(task):
            fn: Callable[[HostContext], None] = task
        else:
            primitives = list(task)

            def fn(ctx: HostContext) -> None:
                ctx.ensure(primitives)

        runbook = Runbook(name=name, steps=(Step(name=name, task=fn, groups=groups, timeout=timeout),))
        return self.run(runbook, limit=limit, check=check, progress=progress)

    def facts(self, limit: str | Sequence[str] | None = None) -> dict[str, Facts]:
        """Gather facts (one round trip per host) for a look around in a notebook."""
        return self.gather_facts(limit)[0]

    def gather_facts(self, limit: str | Sequence[str] | None = None) -> tuple[dict[str, Facts], RunReport]:
        """Facts of every host that answered, and the report naming the ones that did not (the CLI's `facts`)."""
        found: dict[str, Facts] = {}

        def gather(ctx: HostContext) -> None:
            found[ctx.name] = ctx.facts

        report = self.run_task(gather, limit=limit, check=True, name="facts")
        return {h: found[h] for h in report.hosts if h in found}, report


def default_progress(stream: TextIO | None = None, show_diff: bool = False, full: bool = False) -> Progress:
    """Colour and the live status line only on a terminal (colour not under NO_COLOR, neither under TERM=dumb);
    cron and pipes get plain, complete lines. `full` (-v) keeps long lines whole on a terminal too."""
    out = stream or sys.stdout
    return Progress(out, colour=wants_colour(out), show_diff=show_diff, live=wants_live(out), full=full)


def wants_colour(stream: TextIO) -> bool:
    """ANSI colour codes only where a person reads a terminal that understands them."""
    if os.environ.get("NO_COLOR"):
        return False
    return wants_live(stream)


def wants_live(stream: TextIO) -> bool:
    """A redrawn status line needs a terminal that can move its cursor: not a pipe, a file or TERM=dumb."""
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
