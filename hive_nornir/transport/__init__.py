"""SSH transport: the `hive_ssh` Nornir connection plugin, its session API and its errors."""

from hive_nornir.transport.errors import (
    AuthenticationFailed,
    CommandFailed,
    CommandTimeout,
    ConnectionRefused,
    ConnectTimeout,
    HostKeyChanged,
    HostKeyUnknown,
    HostUnreachable,
    SudoPasswordRequired,
    TransportError,
)
from hive_nornir.transport.ssh import CONNECTION_NAME, CommandResult, HiveSSH, SSHSession, session_for

__all__ = [
    "CONNECTION_NAME",
    "AuthenticationFailed",
    "CommandFailed",
    "CommandResult",
    "CommandTimeout",
    "ConnectTimeout",
    "ConnectionRefused",
    "HiveSSH",
    "HostKeyChanged",
    "HostKeyUnknown",
    "HostUnreachable",
    "SSHSession",
    "SudoPasswordRequired",
    "TransportError",
    "session_for",
]
