"""SSH transport: parameters (params), connecting (connect), the session (session), the `hive_ssh` plugin (plugin).

Names are resolved on first use (PEP 562), so importing `hive_nornir.transport.errors` (which the engine and the
CLI do) does not import paramiko: `--help`, `inventory` and `check-site` start without it.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hive_nornir.transport.errors import (
        AuthenticationFailed,
        CommandFailed,
        CommandTimeout,
        ConnectError,
        ConnectionLost,
        ConnectionRefused,
        ConnectTimeout,
        HostKeyChanged,
        HostKeyUnknown,
        HostUnreachable,
        NoExitStatus,
        SudoPasswordRequired,
        TransportError,
    )
    from hive_nornir.transport.params import ConnectParams, build_params
    from hive_nornir.transport.plugin import CONNECTION_NAME, HiveSSH, session_for
    from hive_nornir.transport.session import CommandResult, SSHSession, connect

_ERRORS = ("AuthenticationFailed", "CommandFailed", "CommandTimeout", "ConnectError", "ConnectionLost",
           "ConnectionRefused", "ConnectTimeout", "HostKeyChanged", "HostKeyUnknown", "HostUnreachable",
           "NoExitStatus", "SudoPasswordRequired", "TransportError")
_WHERE: dict[str, str] = {
    **{name: "errors" for name in _ERRORS},
    "ConnectParams": "params", "build_params": "params",
    "CONNECTION_NAME": "plugin", "HiveSSH": "plugin", "session_for": "plugin",
    "CommandResult": "session", "SSHSession": "session", "connect": "session",
}


class _Package(types.ModuleType):
    """`connect` names the session's function, as it always has, although a submodule is called connect too:
    importing that submodule must not rebind the package's name to it."""

    def __setattr__(self, name: str, value: Any) -> None:
        """Ignore the import system binding the submodule `connect`; everything else as usual."""
        if name == "connect" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    """Import the submodule that defines `name` only when someone asks for it."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value

__all__ = [
    "CONNECTION_NAME",
    "AuthenticationFailed",
    "CommandFailed",
    "CommandResult",
    "CommandTimeout",
    "ConnectError",
    "ConnectParams",
    "ConnectTimeout",
    "ConnectionLost",
    "ConnectionRefused",
    "HiveSSH",
    "HostKeyChanged",
    "HostKeyUnknown",
    "HostUnreachable",
    "NoExitStatus",
    "SSHSession",
    "SudoPasswordRequired",
    "TransportError",
    "build_params",
    "connect",
    "session_for",
]
