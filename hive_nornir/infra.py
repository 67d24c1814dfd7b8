"""build-infra: the stage's provider makes the machines (or forgets them with -D) and writes the stage state."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hive_nornir.engine.errors import BadInput
from hive_nornir.engine.lock import StageLock
from hive_nornir.engine.outcome import CHANGED, FAILED, OK, Change, HostOutcome
from hive_nornir.providers import NotOurs, ProviderError, get_provider
from hive_nornir.report.run_report import RunReport

if TYPE_CHECKING:
    from hive_nornir.api import Hive
    from hive_nornir.report.progress import Progress


def build_infra(hive: Hive, *, destroy: bool = False, check: bool = False, progress: Progress | None = None,
                adopt: bool = False, rekey: Sequence[str] = ()) -> RunReport:
    """Run the provider under the stage lock and report per host what it did.

    `adopt` takes over lab resources under the stage's names that another checkout (or an older hive_nornir)
    made; without it they are refused (NotOurs, raised: nothing was changed). `rekey` names hosts whose changed
    host key is accepted; any other changed key is refused.
    """
    stage = hive.site.stages[hive.stage]
    provider = get_provider(stage.provider)
    rekey = _hosts_named(hive, rekey, "--rekey")
    if rekey and destroy:
        raise BadInput("--rekey applies to build-infra, not to build-infra -D")
    report = RunReport(phase="build-infra" + (" -D" if destroy else ""), stage=hive.stage, check=check,
                       started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), warnings=hive.warnings())
    started = time.monotonic()
    recorded = hive.state  # a broken state.json is bad input (StateError names the file), before any change

    def say(message: str) -> None:
        if progress is not None and not progress.quiet:
            progress._write(f"   {message}")

    if progress is not None and not progress.quiet:
        progress._write(f"== build-infra ({stage.provider}){' destroy' if destroy else ''}")
    with StageLock(hive.context_dir):
        if check:
            preflight = getattr(provider, "preflight", None)  # check mode predicts the ownership refusal too
            if callable(preflight):
                preflight(hive.site, hive.stage, hive.context_dir, destroy=destroy, adopt=adopt)
            report.outcomes = _predict(hive, destroy)
        elif destroy:
            before = list((recorded or {}).get("hosts", {}))
            try:
                provider.destroy(hive.site, hive.stage, hive.context_dir, say, adopt=adopt)
            except NotOurs:
                raise
            except ProviderError as exc:
                report.outcomes = [HostOutcome("(provider)", "build-infra -D", FAILED, error=str(exc))]
            else:
                report.outcomes = [HostOutcome(h, "build-infra", CHANGED, [Change(h, "removed")]) for h in before]
        else:
            try:
                result = provider.build(hive.site, hive.stage, hive.context_dir, say, adopt=adopt, rekey=rekey)
            except NotOurs:
                raise
            except ProviderError as exc:
                report.outcomes = [HostOutcome("(provider)", "build-infra", FAILED, error=str(exc))]
            else:
                for name, actions in result.get("hosts", {}).items():
                    changes = [Change(name, str(a)) for a in actions]
                    report.outcomes.append(HostOutcome(name, "build-infra", CHANGED if changes else OK, changes))
    report.hosts = [o.host for o in report.outcomes]
    report.seconds = round(time.monotonic() - started, 2)
    return report


def _hosts_named(hive: Hive, wanted: Sequence[str], option: str) -> list[str]:
    """Inventory names for host names given in full or short (p-hive0); an unknown one is bad input."""
    hosts = hive.hosts()
    short = {h.split(".", 1)[0]: h for h in hosts}
    out = []
    for item in wanted:
        name = item if item in hosts else short.get(item)
        if name is None:
            raise BadInput(f"{option} {item}: not a host of stage {hive.stage} ({', '.join(hosts)})")
        out.append(name)
    return out


def _predict(hive: Hive, destroy: bool) -> list[HostOutcome]:
    """Check mode: say what build-infra would do from the recorded state, touching nothing."""
    known = (hive.state or {}).get("hosts", {})
    outcomes = []
    for name in hive.hosts():
        if destroy:
            changes = [Change(name, "would remove", assumed=True)] if name in known else []
        else:
            changes = [] if name in known else [Change(name, "would create", assumed=True)]
        outcomes.append(HostOutcome(name, "build-infra", CHANGED if changes else OK, changes))
    return outcomes
