"""The controller's HTTP proxy on each host: an SSH remote forward (hive-builder's `RemoteForward <port> <proxy>`).

With `hive_http_proxy: host:port` (the proxy as the controller sees it), every session asks sshd to listen on
`<hive_private_ip>:<hive_http_proxy_port>` and each connection made there is piped to that proxy from the
controller, for as long as the session lives. sshd binds the private address only when `GatewayPorts
clientspecified` (or `yes`) applies to the connection; before that it binds loopback, so the sshd step starts a
new connection once GatewayPorts changed (renew()). A full URL (`http://proxy:8080`) is used by the hosts
directly: no forward.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import paramiko

if TYPE_CHECKING:
    from hive_nornir.transport.session import SSHSession

DEFAULT_PORT = 3128
REQUEST_DELAYS_S = (0.2, 0.5, 1.0, 2.0)  # a listener of the session just closed may still hold the port
CONNECT_TIMEOUT_S = 10.0
CHUNK = 1 << 16

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForwardSpec:
    """Where sshd listens on the host and which controller address each connection is piped to."""

    bind_addr: str
    bind_port: int
    target_host: str
    target_port: int


def split_host_port(value: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """`localhost:3128`, `[::1]:3128` or `proxy` (default port) -> (host, port); a bad port is a ValueError."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_s = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_s = text.split(":")
    else:
        host, port_s = text, ""
    port = int(port_s) if port_s else default_port
    if not host or not 1 <= port <= 65535:
        raise ValueError(f"hive_http_proxy must be host:port, not {value!r}")
    return host, port


def forward_spec(get: Callable[[str, Any], Any]) -> ForwardSpec | None:
    """From host data (`host.get`): None without a proxy or with a full URL the hosts reach themselves."""
    proxy = get("hive_http_proxy", None)
    if not proxy or "://" in str(proxy):
        return None
    target_host, target_port = split_host_port(str(proxy))
    port = int(get("hive_http_proxy_port", None) or DEFAULT_PORT)
    return ForwardSpec(str(get("hive_private_ip", None) or ""), port, target_host, target_port)


class ProxyForward:
    """One remote forward on one SSH transport; connections are piped in daemon threads until either side ends."""

    def __init__(self, transport: paramiko.Transport, spec: ForwardSpec, label: str) -> None:
        self.transport = transport
        self.spec = spec
        self.label = label
        self.error = ""
        self.opened = False
        self.connections = 0

    def open(self) -> bool:
        """Ask sshd to listen; a denied request is retried briefly, then recorded in `error` (never raised)."""
        s = self.spec
        for delay in (*REQUEST_DELAYS_S, None):
            try:
                self.transport.request_port_forward(s.bind_addr, s.bind_port, handler=self._accept)
                self.opened, self.error = True, ""
                return True
            except (paramiko.SSHException, EOFError, OSError) as e:
                self.error = (f"sshd refused to listen on {s.bind_addr or '*'}:{s.bind_port} for the proxy "
                              f"forward ({e}): is the port taken, or AllowTcpForwarding off?")
            if delay is None or not self.transport.is_active():
                break
            time.sleep(delay)
        log.warning("%s: %s", self.label, self.error)
        return False

    def _accept(self, chan: paramiko.Channel, origin: tuple[str, int], server: tuple[str, int]) -> None:
        """Called in paramiko's transport thread: never block it, pipe in a thread of our own."""
        self.connections += 1
        threading.Thread(target=self._serve, args=(chan,), name=f"proxy-forward-{self.label}", daemon=True).start()

    def _serve(self, chan: paramiko.Channel) -> None:
        """Dial the controller's proxy and copy bytes both ways, passing each side's EOF on."""
        try:
            sock = socket.create_connection((self.spec.target_host, self.spec.target_port), CONNECT_TIMEOUT_S)
        except OSError as e:
            log.warning("%s: proxy %s:%s unreachable from the controller: %s", self.label, self.spec.target_host,
                        self.spec.target_port, e)
            chan.close()
            return
        sock.settimeout(None)
        with contextlib.closing(sock), contextlib.closing(chan), contextlib.suppress(OSError, EOFError,
                                                                                         paramiko.SSHException):
            pipe(chan, sock)


def pipe(chan: Any, sock: socket.socket, poll_s: float = 5.0) -> None:
    """Copy until both directions saw EOF, or the channel closed (the SSH session ended)."""
    sel = selectors.DefaultSelector()
    try:
        sel.register(chan, selectors.EVENT_READ)
        sel.register(sock, selectors.EVENT_READ)
        open_ends = 2
        while open_ends and not getattr(chan, "closed", False):
            for key, _ in sel.select(poll_s):
                src: Any = key.fileobj
                data = src.recv(CHUNK)
                if data:
                    (sock if src is chan else chan).sendall(data)
                    continue
                sel.unregister(src)
                open_ends -= 1
                if src is chan:
                    sock.shutdown(socket.SHUT_WR)
                else:
                    chan.shutdown_write()
    finally:
        sel.close()


_ATTR = "_hive_proxy_forward"  # kept on the session object: it lives and dies with it
_LOCK = threading.Lock()


def attach(get: Callable[[str, Any], Any], label: str, session: SSHSession,
           transport: paramiko.Transport) -> ProxyForward | None:
    """Open the forward on this session once (the hook in session_for); a bad site value is logged, not raised."""
    try:
        spec = forward_spec(get)
    except ValueError as e:
        log.warning("%s: %s", label, e)
        return None
    if spec is None:
        return None
    with _LOCK:
        current = forward_of(session)
        if current is not None and current.spec == spec and current.transport is transport:
            return current
        forward = ProxyForward(transport, spec, label)
        setattr(session, _ATTR, forward)
    forward.open()
    return forward


def attach_for_host(host: Any, session: SSHSession) -> SSHSession:
    """The hook session_for calls on every session it hands out: the host's proxy forward, once per session.

    Hosts without a forwarded proxy cost one dict lookup and never touch the session."""
    if host.get("hive_http_proxy", None):
        attach(host.get, str(host.name), session, session._transport)
    return session


class _Closable(Protocol):
    def close(self) -> None: ...


def forward_of(session: object) -> ProxyForward | None:
    """The proxy forward this session holds, if any (its `error` says why it is not listening)."""
    found = getattr(session, _ATTR, None)
    return found if isinstance(found, ProxyForward) else None


def renew(session: _Closable) -> bool:
    """After sshd's GatewayPorts changed: close a session holding a forward, so the next one listens anew."""
    if forward_of(session) is None:
        return False
    session.close()
    return True


# -- local forwards: a controller port piped to an address as the host sees it (ssh -L) --------------------------

class LocalForward:
    """`ssh -L 127.0.0.1:<free port>:<host>:<port>` on one SSH transport: the engine API of a host, say, reached
    without opening its port to anyone but this controller's loopback. It ends with the transport (or close())."""

    def __init__(self, transport: paramiko.Transport, remote_host: str, remote_port: int, label: str) -> None:
        self.transport = transport
        self.remote = (remote_host, remote_port)
        self.label = label
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        self.connections = 0
        threading.Thread(target=self._accept, name=f"local-forward-{label}", daemon=True).start()

    @property
    def active(self) -> bool:
        """Still listening, and the SSH transport under it alive."""
        return not self._closed.is_set() and self.transport.is_active()

    @property
    def closed(self) -> bool:
        """The listener is closed (close(), or the accept loop saw the transport die)."""
        return self._closed.is_set()

    def close(self) -> None:
        """Stop listening; connections already piped end with their channel."""
        with contextlib.suppress(OSError):
            self._listener.close()
        self._closed.set()

    def _accept(self) -> None:
        """Accept until closed or the transport dies (polled, so a dead session frees the port)."""
        sel = selectors.DefaultSelector()
        try:
            sel.register(self._listener, selectors.EVENT_READ)
            while self.active:
                if not sel.select(0.5):
                    continue
                try:
                    conn, peer = self._listener.accept()
                except OSError:
                    break
                self.connections += 1
                threading.Thread(target=self._serve, args=(conn, peer), name=f"local-forward-{self.label}",
                                 daemon=True).start()
        finally:
            sel.close()
            self.close()

    def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        """One direct-tcpip channel per accepted connection, piped both ways."""
        try:
            chan = self.transport.open_channel("direct-tcpip", self.remote, peer, timeout=CONNECT_TIMEOUT_S)
        except (paramiko.SSHException, EOFError, OSError) as e:
            log.warning("%s: sshd did not open %s:%s for the local forward: %s (AllowTcpForwarding off?)",
                        self.label, *self.remote, e)
            conn.close()
            return
        with contextlib.closing(conn), contextlib.closing(chan), contextlib.suppress(OSError, EOFError,
                                                                                     paramiko.SSHException):
            pipe(chan, conn)


_LOCAL_ATTR = "_hive_local_forwards"


def local_forward(session: Any, remote_host: str, remote_port: int, label: str = "") -> LocalForward:
    """The session's forward to remote_host:remote_port, opened once per session (kept on it, like the proxy's)."""
    transport: paramiko.Transport = session._transport  # an SSHSession's
    with _LOCK:
        forwards: dict[tuple[str, int], LocalForward] = getattr(session, _LOCAL_ATTR, None) or {}
        found = forwards.get((remote_host, remote_port))
        if found is not None and found.active and found.transport is transport:
            return found
        forward = LocalForward(transport, remote_host, remote_port, label or f"{remote_host}:{remote_port}")
        forwards[(remote_host, remote_port)] = forward
        setattr(session, _LOCAL_ATTR, forwards)
    return forward
