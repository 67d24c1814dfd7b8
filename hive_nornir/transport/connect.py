"""Connecting: dial (TCP or through bastions), SSH handshake, host key check, authentication, retry."""

from __future__ import annotations

import errno
import logging
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from hive_nornir.transport.errors import (
    AuthenticationFailed,
    ConnectError,
    ConnectionRefused,
    ConnectTimeout,
    HostKeyChanged,
    HostKeyUnknown,
    HostUnreachable,
)
from hive_nornir.transport.keepalive import KeepaliveTransport
from hive_nornir.transport.known_hosts import KnownHosts, fingerprint, host_entry
from hive_nornir.transport.paramiko_log import PARAMIKO_LOG
from hive_nornir.transport.params import ConnectParams, expand

log = logging.getLogger(__name__)

_BACKOFF_S = (0.5, 1.0, 2.0)


def _tcp_socket(host: str, port: int, timeout: float) -> socket.socket:
    """Dial with TCP_NODELAY set before paramiko sees the socket: ~50 ms -> ~7 ms per command."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise HostUnreachable(host, port, f"cannot resolve {host!r}: {e.strerror}") from e
    last: ConnectError | None = None
    for family, socktype, proto, _, addr in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.settimeout(timeout)
            sock.connect(addr)
            return sock
        except ConnectionRefusedError:
            sock.close()
            last = ConnectionRefused(host, port, "connection refused: sshd not listening on this port")
        except TimeoutError:
            sock.close()
            last = ConnectTimeout(host, port, f"no TCP answer within {timeout:g}s (host down or filtered)")
        except OSError as e:
            sock.close()
            if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.EADDRNOTAVAIL):
                last = HostUnreachable(host, port, f"unreachable: {e.strerror}")
            else:
                last = ConnectError(host, port, f"cannot connect: {e.strerror or e}")
    assert last is not None
    raise last


BANNER_ERROR = "Error reading SSH protocol banner"


def handshake_detail(e: BaseException) -> str:
    """paramiko glues the socket error onto its banner message ("...banner[Errno 104] ..."): split them readably."""
    text = str(e) or type(e).__name__
    if text.startswith(BANNER_ERROR) and text != BANNER_ERROR:
        return f"{BANNER_ERROR}: {text[len(BANNER_ERROR):].strip()}"
    return text


def _load_keys(params_keys: tuple[str, ...], look_for_keys: bool) -> list[tuple[str, paramiko.PKey]]:
    """Load the private keys to offer, naming each by path; an unreadable key is a clear auth error."""
    paths = list(params_keys)
    if look_for_keys:
        for name in ("id_ed25519", "id_ecdsa", "id_rsa"):
            p = expand(f"~/.ssh/{name}")
            if Path(p).is_file():
                paths.append(p)
    keys: list[tuple[str, paramiko.PKey]] = []
    for p in paths:
        try:
            keys.append((p, paramiko.PKey.from_path(p)))
        except paramiko.PasswordRequiredException as e:
            if params_keys:
                raise ValueError(f"key {p} is passphrase-protected; hive_ssh needs an unencrypted key") from e
        except (OSError, paramiko.SSHException, ValueError) as e:
            if params_keys:
                raise ValueError(f"cannot load key {p}: {e}") from e
    return keys


class _Connector:
    """One connect attempt: socket, handshake, host key check, auth; closes what it opened on failure."""

    def __init__(self, params: ConnectParams) -> None:
        self.params = params
        self.known = KnownHosts(params.known_hosts)
        self.opened: list[paramiko.Transport] = []

    def run(self) -> tuple[KeepaliveTransport, list[paramiko.Transport], socket.socket | None]:
        """Walk the jump chain then the target; the last transport is the target's."""
        p = self.params
        try:
            via: paramiko.Transport | None = None
            for hop in p.proxy_jump:
                sock = self._sock(hop.hostname, hop.port, via)
                via = self._handshake(sock, hop.hostname, hop.port, hop.username, hop.key_files)
            tcp: socket.socket | None = None
            target_sock: Any
            if p.proxy_command:
                target_sock = paramiko.ProxyCommand(p.proxy_command)
            else:
                target_sock = self._sock(p.hostname, p.port, via)
                tcp = target_sock if isinstance(target_sock, socket.socket) else None
            target = self._handshake(target_sock, p.hostname, p.port, p.username, p.key_files)
            return target, self.opened[:-1], tcp
        except BaseException:
            for t in reversed(self.opened):
                t.close()
            raise

    def _sock(self, host: str, port: int, via: paramiko.Transport | None) -> Any:
        """A TCP socket, or a direct-tcpip channel through the previous bastion."""
        if via is None:
            return _tcp_socket(host, port, self.params.connect_timeout)
        try:
            return via.open_channel(
                "direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=self.params.connect_timeout
            )
        except paramiko.ChannelException as e:
            raise ConnectionRefused(host, port, f"bastion could not connect: {e.text}") from e
        except paramiko.SSHException as e:
            raise ConnectTimeout(host, port, f"bastion channel not opened: {e}") from e

    def _handshake(
        self, sock: Any, host: str, port: int, user: str, key_files: tuple[str, ...]
    ) -> KeepaliveTransport:
        """SSH banner + kex within connect_timeout, then host key verification and authentication."""
        p = self.params
        timeout = p.connect_timeout
        t = KeepaliveTransport(sock)
        t.set_log_channel(PARAMIKO_LOG)
        self.opened.append(t)
        t.banner_timeout = timeout
        t.handshake_timeout = timeout
        t.auth_timeout = timeout
        preferred = self.known.preferred_key_types(host, port)
        if preferred:
            opts = t.get_security_options()
            avail = list(opts.key_types)
            opts.key_types = [k for k in preferred if k in avail] + [k for k in avail if k not in preferred]
        start = time.monotonic()
        try:
            t.start_client(timeout=timeout)
        except (paramiko.SSHException, EOFError, OSError) as e:
            elapsed = time.monotonic() - start
            if elapsed >= timeout * 0.9:
                raise ConnectTimeout(host, port, f"SSH handshake did not finish within {timeout:g}s") from e
            raise ConnectionRefused(
                host, port,
                f"connection closed before the SSH handshake finished: sshd not listening ({handshake_detail(e)})",
            ) from e
        try:
            server_key = t.get_remote_server_key()
        except paramiko.SSHException as e:
            raise ConnectTimeout(host, port, f"SSH handshake did not finish within {timeout:g}s") from e
        self._check_host_key(host, port, server_key)
        self._authenticate(t, host, port, user, key_files)
        return t

    def _check_host_key(self, host: str, port: int, key: paramiko.PKey) -> None:
        """Known key must match; unknown is recorded (accept-new) or refused (yes)."""
        known = self.known.lookup(host, port)
        if not known:
            if self.params.strict_host_key_checking == "yes":
                raise HostKeyUnknown(
                    host, port,
                    f"host key {key.get_name()} {fingerprint(key)} is not in {self.known.path} "
                    f"(strict_host_key_checking=yes); record it with "
                    f"`ssh-keyscan -p {port} {host} >> {self.known.path}` after checking the fingerprint",
                )
            known = self.known.add(host, port, key)
            log.info("recorded host key %s %s for %s in %s", key.get_name(), fingerprint(key),
                     host_entry(host, port), self.known.path)
        blob = key.asbytes()
        if any(k.blob == blob for k in known):
            return
        same_type = [k for k in known if k.keytype == key.get_name()] or known
        old = same_type[0]
        raise HostKeyChanged(
            host, port,
            f"HOST KEY CHANGED for {host_entry(host, port)}: {self.known.path} line {old.lineno} records "
            f"{old.keytype} {old.fingerprint}, the host now presents {key.get_name()} {fingerprint(key)}. "
            f"If the host was rebuilt, remove line {old.lineno} from {self.known.path} "
            f"(ssh-keygen -R '{host_entry(host, port)}' -f {self.known.path}) and connect again; "
            f"otherwise someone may be intercepting the connection.",
        )

    def _authenticate(
        self, t: paramiko.Transport, host: str, port: int, user: str, key_files: tuple[str, ...]
    ) -> None:
        """Try the configured keys, then the password; the error names user and keys, never a secret."""
        p = self.params
        try:
            keys = _load_keys(key_files, look_for_keys=not key_files and p.look_for_keys)
        except ValueError as e:
            raise AuthenticationFailed(host, port, f"user {user!r}: {e}") from e
        tried: list[str] = []
        for path, pkey in keys:
            try:
                t.auth_publickey(user, pkey)
            except paramiko.BadAuthenticationType as e:
                allowed = ",".join(e.allowed_types)
                tried.append(f"{path} ({pkey.get_name()} {fingerprint(pkey)}; server allows {allowed})")
                break
            except paramiko.AuthenticationException:
                tried.append(f"{path} ({pkey.get_name()} {fingerprint(pkey)})")
                continue
            except (paramiko.SSHException, EOFError, OSError) as e:
                raise AuthenticationFailed(host, port, f"user {user!r}: connection lost in auth: {e}") from e
            if t.is_authenticated():
                return
        if p.password is not None:
            try:
                t.auth_password(user, p.password)
            except paramiko.AuthenticationException:
                tried.append("password")
            if t.is_authenticated():
                return
        what = ", ".join(tried) if tried else "no key or password configured"
        raise AuthenticationFailed(host, port, f"user {user!r} was refused; tried: {what}")


@dataclass(frozen=True)
class Link:
    """An authenticated transport to the target, the bastion transports under it, and our own TCP socket."""

    transport: KeepaliveTransport
    jumps: tuple[paramiko.Transport, ...]
    tcp: socket.socket | None


def dial(params: ConnectParams) -> Link:
    """Connect and log in; retry only refused/timeouts (back-off 0.5, 1, 2 s), never auth or host key errors."""
    attempts = max(0, params.connect_retries) + 1
    for attempt in range(attempts):
        try:
            start = time.monotonic()
            target, jumps, tcp = _Connector(params).run()
            log.debug("connected to %s:%s as %s in %.3fs", params.hostname, params.port, params.username,
                      time.monotonic() - start)
            return Link(target, tuple(jumps), tcp)
        except (ConnectionRefused, ConnectTimeout) as e:
            if attempt == attempts - 1:
                raise
            delay = _BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)]
            log.debug("%s; retry %d/%d in %.1fs", e, attempt + 1, attempts - 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
