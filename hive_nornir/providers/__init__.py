"""build-infra providers: each turns a site stage into reachable hosts and writes the stage state.json.

Providers are entry points of the group `hive_nornir.providers` (ours: docker, prepared; see pyproject.toml): a
module (or object) with `build` and `destroy`. `supported_providers()` is the one list site validation and
build-infra both read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from hive_nornir.engine.errors import BadInput
from hive_nornir.providers.common import Log, NotOurs, ProviderError
from hive_nornir.registry import PROVIDER_GROUP, PluginError, lookup, supported_providers

KNOWN_UNSUPPORTED = ("aws", "gcp", "azure", "vagrant", "kickstart", "openstack")


class ProviderNotSupported(ProviderError, BadInput):
    """The site names a provider that build-infra does not implement (yet): bad input (exit 2), nothing touched."""


class Provider(Protocol):
    """What every provider module offers."""

    def build(self, site: Any, stage: str, context_dir: Path, log: Log = ..., *, adopt: bool = False,
              rekey: Any = ()) -> dict[str, Any]:
        """Bring the hosts up; return {"changed", "hosts": {name: [actions] ([] = unchanged)}, "state"}.

        Resources the stage did not create raise NotOurs unless `adopt`; a changed host key is refused unless
        the host is in `rekey`."""

    def destroy(self, site: Any, stage: str, context_dir: Path, log: Log = ..., *, adopt: bool = False) -> None:
        """Remove what build created (NotOurs for anything else unless `adopt`) and forget it in state.json."""


def get_provider(name: str) -> Provider:
    """The provider registered for a site's `provider:` value, or a clear error naming the supported ones."""
    supported = supported_providers()
    if name not in supported:
        hint = ""
        if name == "openstack":
            hint = " (hive-builder's inventory accepts it, but hive-builder has no roles for it either)"
        elif name in KNOWN_UNSUPPORTED:
            hint = " (hive-builder supports it; hive_nornir does not yet)"
        raise ProviderNotSupported(f"provider {name!r} is not supported yet by build-infra{hint}; "
                                   f"supported: {', '.join(supported) or 'none'}")
    plugin = lookup(PROVIDER_GROUP, name, "provider")
    loaded: Any = plugin.load()
    missing = [attr for attr in ("build", "destroy") if not callable(getattr(loaded, attr, None))]
    if missing:
        raise PluginError(f"provider {name!r} of {plugin.dist} ({plugin.value}) has no {' or '.join(missing)}")
    return loaded  # type: ignore[no-any-return,unused-ignore]


__all__ = ["KNOWN_UNSUPPORTED", "NotOurs", "Provider", "ProviderError", "ProviderNotSupported", "get_provider",
           "supported_providers"]
