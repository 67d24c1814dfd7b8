"""Transport errors: one class per failure a human must act on differently, each naming host:port."""

from __future__ import annotations


class TransportError(Exception):
    """Base of every SSH transport failure, so callers can mark a host unreachable with one except."""

    def __init__(self, host: str, port: int, message: str) -> None:
        self.host = host
        self.port = port
        self.message = message
        super().__init__(f"{host}:{port}: {message}")


class ConnectionRefused(TransportError):
    """The TCP port answered with a reset: sshd is not listening (or a proxy had nothing behind it)."""


class ConnectTimeout(TransportError):
    """No TCP connect or SSH handshake within connect_timeout: host down, filtered, or sshd stuck."""


class HostUnreachable(TransportError):
    """The network says the address cannot be reached or resolved: a routing/DNS problem, not sshd."""


class AuthenticationFailed(TransportError):
    """sshd refused the user/key: fix authorized_keys or the key path; retrying cannot help."""


class HostKeyChanged(TransportError):
    """The host presented a key other than the recorded one: possible MITM or a rebuilt host."""


class HostKeyUnknown(TransportError):
    """strict_host_key_checking=yes and the host is not in known_hosts: record it first."""


class SudoPasswordRequired(TransportError):
    """`sudo -n` needs a password: the login user lacks NOPASSWD sudo, so nothing can run as root."""


class CommandTimeout(TransportError):
    """A command ran past its timeout; its channel was closed, the connection is still usable."""


class CommandFailed(TransportError):
    """A transport-internal helper command (install, mv, cat) failed; carries the exit status and stderr."""

    def __init__(self, host: str, port: int, message: str, exit_status: int = -1, stderr: str = "") -> None:
        self.exit_status = exit_status
        self.stderr = stderr
        super().__init__(host, port, message)
