"""hive_nornir: build and run a site of Linux servers from a hive-builder site, with Nornir, over SSH."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Hive", "RunReport", "__version__"]

if TYPE_CHECKING:
    from hive_nornir.api import Hive
    from hive_nornir.report.run_report import RunReport


def __getattr__(name: str) -> Any:
    """Import the API lazily so `import hive_nornir.site` stays cheap for plugins and tests."""
    if name == "Hive":
        from hive_nornir.api import Hive

        return Hive
    if name == "RunReport":
        from hive_nornir.report.run_report import RunReport

        return RunReport
    raise AttributeError(name)
