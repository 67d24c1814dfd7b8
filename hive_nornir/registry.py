"""Entry-point registry: phases and build-infra providers come from installed distributions, ours and others'."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from hive_nornir.engine.errors import BadInput

PHASE_GROUP = "hive_nornir.phases"
PROVIDER_GROUP = "hive_nornir.providers"
OWN_DIST = "hive_nornir"


class PluginError(BadInput):
    """A phase or provider that is not installed, registered twice, or does not load: nothing was touched."""


@dataclass(frozen=True)
class Plugin:
    """One registered entry point: its name, what it points at, and the distribution that registered it."""

    group: str
    name: str
    value: str
    dist: str

    def load(self) -> Any:
        """Import what the entry point names; a broken plugin is named with its distribution, not a traceback."""
        try:
            return metadata.EntryPoint(self.name, self.value, self.group).load()
        except Exception as exc:  # any import-time error of a plugin is reported the same way
            raise PluginError(f"{self.group} entry point {self.name!r} of {self.dist} ({self.value}) does not "
                              f"load: {type(exc).__name__}: {exc}") from exc


def plugins(group: str) -> dict[str, list[Plugin]]:
    """Every entry point of the group by name (a list: two distributions may claim the same name)."""
    found: dict[str, list[Plugin]] = {}
    for ep in metadata.entry_points(group=group):
        dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
        plugin = Plugin(group, ep.name, ep.value, dist)
        if plugin not in found.setdefault(ep.name, []):
            found[ep.name].append(plugin)
    return found


def lookup(group: str, name: str, what: str) -> Plugin:
    """The single plugin registered under name; unknown or ambiguous names are bad input naming what exists."""
    found = plugins(group)
    candidates = found.get(name, [])
    if not candidates:
        from hive_nornir.site.rules import suggest

        ours = any(_normal(p.dist) == OWN_DIST for named in found.values() for p in named)
        hint = "" if ours else (f"; hive_nornir's own {group} entry points are missing: reinstall it "
                                f"(pip install -e . in a checkout) so its metadata is current")
        raise PluginError(f"unknown {what} {name!r}{suggest(name, list(found))}; available: "
                          f"{', '.join(sorted(found)) or 'none'} (entry point group {group}){hint}")
    if len(candidates) > 1:
        who = "; ".join(f"{p.dist} ({p.value})" for p in candidates)
        raise PluginError(f"{what} {name!r} is registered by more than one distribution: {who}; "
                          f"uninstall one of them")
    return candidates[0]


def _normal(dist: str) -> str:
    """Distribution names compare normalised (PEP 503): hive-nornir, hive_nornir and Hive.Nornir are one."""
    return re.sub(r"[-_.]+", "_", dist).lower()


def supported_providers() -> list[str]:
    """Provider names build-infra can run (site validation refuses any other `provider:`), sorted."""
    return sorted(plugins(PROVIDER_GROUP))
