"""SSH transport: parameters (params), connecting (connect), the session (session), the `hive_ssh` plugin (plugin)."""

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
