"""Transport errors: one class per failure a human must act on differently, each naming host:port.

Two families: `ConnectError` (the host cannot be reached, logged in to, or stopped answering: the engine reports it
*unreachable*) and the rest of `TransportError` (the host answers, but a command could not be run to a result:
the engine reports it *failed*).
"""

from __future__ import annotations


class TransportError(Exception):
    """Base of every SSH transport failure; a plain one means the host answers (*failed*, not unreachable)."""

    def __init__(self, host: str, port: int, message: str) -> None:
        self.host = host
        self.port = port
        self.message = message
        super().__init__(f"{host}:{port}: {message}")


class ConnectError(TransportError):
    """The host cannot be reached or logged in to, or stopped answering: the only errors that mean *unreachable*."""


class ConnectionRefused(ConnectError):
    """The TCP port answered with a reset: sshd is not listening (or a proxy had nothing behind it)."""


class ConnectTimeout(ConnectError):
    """No TCP connect or SSH handshake within connect_timeout: host down, filtered, or sshd stuck."""


class HostUnreachable(ConnectError):
    """The network says the address cannot be reached or resolved: a routing/DNS problem, not sshd."""


class AuthenticationFailed(ConnectError):
    """sshd refused the user/key: fix authorized_keys or the key path; retrying cannot help."""


class HostKeyChanged(ConnectError):
    """The host presented a key other than the recorded one: possible MITM or a rebuilt host."""


class HostKeyUnknown(ConnectError):
    """strict_host_key_checking=yes and the host is not in known_hosts: record it first."""


class ConnectionLost(ConnectError):
    """An open connection died: the host stopped answering keepalives (paused, powered off) or closed it (stopped)."""


class SudoPasswordRequired(TransportError):
    """`sudo -n` needs a password: the login user lacks NOPASSWD sudo, so nothing can run as root."""


class CommandTimeout(TransportError):
    """A command ran past its timeout; its channel was closed, the connection is still usable.

    `command` names the line that was running; `stdout`/`stderr` hold what arrived before the timeout, so a caller
    that printed progress markers can tell which part hung."""

    def __init__(self, host: str, port: int, message: str, command: str = "", stdout: str = "",
                 stderr: str = "") -> None:
        self.command = command
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(host, port, message)


class NoExitStatus(TransportError):
    """The channel closed without an exit status while the host still answers: a signal killed the command."""

    def __init__(self, host: str, port: int, message: str, signal: str = "") -> None:
        self.signal = signal
        super().__init__(host, port, message)


class CommandFailed(TransportError):
    """A transport-internal helper command (install, mv, cat) failed; carries the exit status and stderr."""

    def __init__(self, host: str, port: int, message: str, exit_status: int = -1, stderr: str = "") -> None:
        self.exit_status = exit_status
        self.stderr = stderr
        super().__init__(host, port, message)
