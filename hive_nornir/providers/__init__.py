"""build-infra providers: each turns a site stage into reachable hosts and writes the stage state.json."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

from hive_nornir.providers.common import Log, ProviderError

SUPPORTED = ("docker", "prepared")
KNOWN_UNSUPPORTED = ("aws", "gcp", "azure", "vagrant", "kickstart")


class ProviderNotSupported(ProviderError):
    """The site names a provider that build-infra does not implement (yet)."""


class Provider(Protocol):
    """What every provider module offers."""

    def build(self, site: Any, stage: str, context_dir: Path, log: Log = ...) -> dict[str, Any]:
        """Bring the hosts up; return {"changed", "hosts": {name: [actions] ([] = unchanged)}, "state"}."""

    def destroy(self, site: Any, stage: str, context_dir: Path, log: Log = ...) -> None:
        """Remove what build created and forget it in state.json/known_hosts."""


def get_provider(name: str) -> Provider:
    """The provider module for a site's `provider:` value, or a clear error for the ones we lack."""
    if name not in SUPPORTED:
        hint = " (hive-builder supports it; hive_nornir does not yet)" if name in KNOWN_UNSUPPORTED else ""
        raise ProviderNotSupported(f"provider {name!r} is not supported yet by build-infra{hint}; "
                                   f"supported: {', '.join(SUPPORTED)}")
    mod: Any = importlib.import_module(f"hive_nornir.providers.{name}")
    return mod  # type: ignore[no-any-return,unused-ignore]


__all__ = ["SUPPORTED", "Provider", "ProviderError", "ProviderNotSupported", "get_provider"]
