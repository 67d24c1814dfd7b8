"""hive_ssh: Nornir connection plugin on paramiko; one exec channel per command, exit status, sudo -n."""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import logging
import os
import posixpath
import re
import selectors
import shlex
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko

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
from hive_nornir.transport.forward import attach_for_host
from hive_nornir.transport.known_hosts import KnownHosts, fingerprint, host_entry

if TYPE_CHECKING:
    from nornir.core.configuration import Config
    from nornir.core.inventory import Host

CONNECTION_NAME = "hive_ssh"

log = logging.getLogger(__name__)
# paramiko's transport thread logs tracebacks (e.g. "Error reading SSH protocol banner") that we turn into
# readable TransportErrors; route them under our name with a NullHandler and no propagation so they never hit
# stderr unasked (the CLI's -v turns propagation back on: paramiko_logging(True)).
_PARAMIKO_LOG = f"{__name__}.paramiko"
logging.getLogger(_PARAMIKO_LOG).addHandler(logging.NullHandler())
logging.getLogger(_PARAMIKO_LOG).propagate = False


def paramiko_logging(enabled: bool) -> None:
    """Show paramiko's own log records (tracebacks included) through the root handlers, for -v debugging."""
    logging.getLogger(_PARAMIKO_LOG).propagate = enabled

_BACKOFF_S = (0.5, 1.0, 2.0)
_SUDO_PASSWORD_RE = re.compile(r"^sudo: (a password is required|a terminal is required)", re.MULTILINE)
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODE_RE = re.compile(r"^0?[0-7]{3,4}$")
_ACCOUNT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$")
_READ_MISSING = 3  # exit status of read_file's probe when the path does not exist


@dataclass(frozen=True)
class CommandResult:
    """What one remote command did; frozen so results can be shared with reports safely."""

    command: str
    exit_status: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        """Exit status 0, the only success a shell defines."""
        return self.exit_status == 0


@dataclass(frozen=True)
class Hop:
    """One ProxyJump bastion: where to dial and who to log in as."""

    hostname: str
    port: int
    username: str
    key_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConnectParams:
    """Everything needed to (re)open a session, resolved once from args, extras and ssh_config."""

    hostname: str
    port: int
    username: str
    password: str | None = field(default=None, repr=False)
    key_files: tuple[str, ...] = ()
    look_for_keys: bool = True
    known_hosts: str = "~/.ssh/known_hosts"
    strict_host_key_checking: str = "accept-new"
    connect_timeout: float = 10.0
    connect_retries: int = 3
    keepalive: int = 30
    proxy_jump: tuple[Hop, ...] = ()
    proxy_command: str | None = None


# ---------------------------------------------------------------------------------------------- params


def _parse_jump(spec: str, default_user: str) -> tuple[str, int, str]:
    """Parse one ProxyJump item `[user@]host[:port]` (IPv6 as `[addr]:port`)."""
    user = default_user
    if "@" in spec:
        user, spec = spec.rsplit("@", 1)
    port = 22
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif spec.count(":") == 1:
        host, port_s = spec.split(":")
        port = int(port_s)
    else:
        host = spec
    return host, port, user


def build_params(
    hostname: str | None,
    username: str | None,
    password: str | None,
    port: int | None,
    extras: dict[str, Any] | None,
    configuration: Config | None = None,
) -> ConnectParams:
    """Resolve connection settings: explicit arguments win over ssh_config, like `ssh -p/-l` do."""
    ex = dict(extras or {})
    if not hostname:
        raise ValueError("hive_ssh needs a hostname")
    cfg_path = ex.get("ssh_config")
    if cfg_path is None and configuration is not None:
        default_cfg = _expand(configuration.ssh.config_file or "")
        cfg_path = default_cfg if default_cfg and Path(default_cfg).is_file() else None
    ssh_cfg = paramiko.SSHConfig.from_path(_expand(cfg_path)) if cfg_path else None
    name = str(ex.get("host_name") or "")
    by_name = _named_entry(ssh_cfg, name) if ssh_cfg is not None and name else None
    key_file = ex.get("key_file")
    if by_name is not None:
        # a `Host <inventory name>` entry: reached as `ssh -F ssh_config <name>` would; the inventory fills gaps
        looked = by_name
        real_host = str(looked["hostname"]) if looked.get("hostname") not in (None, name) else hostname
        real_port = int(looked["port"]) if "port" in looked else (
            int(port or 22) if real_host == hostname else 22)
        user = looked.get("user") or username or os.environ.get("USER") or "root"
        stage_key = (_expand(str(key_file)),) if key_file else ()
        key_files = tuple(_expand(k) for k in looked.get("identityfile", [])) + stage_key
    else:
        looked = dict(ssh_cfg.lookup(hostname)) if ssh_cfg else {}
        real_host = str(looked.get("hostname") or hostname)
        real_port = int(port) if port else int(looked.get("port", 22))
        user = username or looked.get("user") or os.environ.get("USER") or "root"
        cfg_keys = tuple(_expand(k) for k in looked.get("identityfile", []))
        key_files = (_expand(str(key_file)),) if key_file else cfg_keys

    hops: list[Hop] = []
    proxy_command = looked.get("proxycommand")
    if proxy_command and proxy_command.strip().lower() == "none":
        proxy_command = None
    jump_spec = looked.get("proxyjump")
    if jump_spec and jump_spec.strip().lower() != "none" and not proxy_command:
        for item in jump_spec.split(","):
            h, p, u = _parse_jump(item.strip(), user)
            hop_cfg: dict[str, Any] = dict(ssh_cfg.lookup(h)) if ssh_cfg else {}
            hop_keys = tuple(_expand(k) for k in hop_cfg.get("identityfile", [])) or key_files
            hop_user = u if "@" in item else str(hop_cfg.get("user") or u)
            hop_port = p if ":" in item else int(hop_cfg.get("port", p))
            hops.append(Hop(str(hop_cfg.get("hostname") or h), hop_port, hop_user, hop_keys))

    return ConnectParams(
        hostname=real_host,
        port=real_port,
        username=str(user),
        password=password,
        key_files=key_files,
        look_for_keys=not key_files,
        known_hosts=str(ex.get("known_hosts") or "~/.ssh/known_hosts"),
        strict_host_key_checking=str(ex.get("strict_host_key_checking", "accept-new")),
        connect_timeout=float(ex.get("connect_timeout", 10)),
        connect_retries=int(ex.get("connect_retries", 3)),
        keepalive=int(ex.get("keepalive", 30)),
        proxy_jump=tuple(hops),
        proxy_command=str(proxy_command) if proxy_command else None,
    )


def _named_entry(ssh_cfg: paramiko.SSHConfig, name: str) -> dict[str, Any] | None:
    """The settings for `name` when a Host pattern other than a bare `*` names it, else None (use the address)."""
    patterns = [p for p in ssh_cfg.get_hostnames() if p != "*" and not p.startswith("!")]
    if not any(fnmatch.fnmatchcase(name, p) for p in patterns):
        return None
    return dict(ssh_cfg.lookup(name))


# ---------------------------------------------------------------------------------------------- connect


def _tcp_socket(host: str, port: int, timeout: float) -> socket.socket:
    """Dial with TCP_NODELAY set before paramiko sees the socket: ~50 ms -> ~7 ms per command."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise HostUnreachable(host, port, f"cannot resolve {host!r}: {e.strerror}") from e
    last: TransportError | None = None
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
                last = TransportError(host, port, f"cannot connect: {e.strerror or e}")
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
            p = _expand(f"~/.ssh/{name}")
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

    def run(self) -> tuple[paramiko.Transport, list[paramiko.Transport], socket.socket | None]:
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
    ) -> paramiko.Transport:
        """SSH banner + kex within connect_timeout, then host key verification and authentication."""
        p = self.params
        timeout = p.connect_timeout
        t = paramiko.Transport(sock)
        t.set_log_channel(_PARAMIKO_LOG)
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
        t.set_keepalive(p.keepalive)
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


def connect(params: ConnectParams) -> SSHSession:
    """Open a session; retry only refused/timeouts (back-off 0.5, 1, 2 s), never auth or host key errors."""
    attempts = max(0, params.connect_retries) + 1
    for attempt in range(attempts):
        try:
            start = time.monotonic()
            target, jumps, tcp = _Connector(params).run()
            session = SSHSession(params, target, jumps, tcp)
            log.debug("connected to %s:%s as %s in %.3fs", params.hostname, params.port, params.username,
                      time.monotonic() - start)
            return session
        except (ConnectionRefused, ConnectTimeout) as e:
            if attempt == attempts - 1:
                raise
            delay = _BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)]
            log.debug("%s; retry %d/%d in %.1fs", e, attempt + 1, attempts - 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------------------------- session


def _q(s: str) -> str:
    """Shell-quote one argument."""
    return shlex.quote(s)


def _expand(path: str) -> str:
    """`~` expansion for config paths."""
    return str(Path(path).expanduser())


class SSHSession:
    """One authenticated SSH transport to a host; what `host.get_connection("hive_ssh")` returns."""

    def __init__(
        self,
        params: ConnectParams,
        transport: paramiko.Transport,
        jumps: list[paramiko.Transport] | None = None,
        tcp: socket.socket | None = None,
    ) -> None:
        self.params = params
        self.host = params.hostname
        self.port = params.port
        self.user = params.username
        self.is_root = params.username == "root"
        self.round_trips = 0
        self._transport = transport
        self._jumps = list(jumps or [])
        self._tcp = tcp
        self._sftp: paramiko.SFTPClient | None = None
        self._private_dir: str | None = None
        self._lock = threading.Lock()

    # -- liveness -------------------------------------------------------------------------------------

    @property
    def tcp_nodelay(self) -> bool:
        """Whether Nagle is off on our own socket (False when tunnelled through a bastion or command)."""
        if self._tcp is None:
            return False
        return bool(self._tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    def is_alive(self) -> bool:
        """Cheap local check (transport still active); keepalives every `keepalive` s notice dead peers."""
        return self._transport.is_active()

    def fresh_login(self) -> float:
        """Prove a NEW connection (not this multiplexed one) still logs in, e.g. after an sshd change."""
        start = time.monotonic()
        other = connect(ConnectParams(**{**self.params.__dict__, "connect_retries": 0}))
        try:
            r = other.run("true", sudo=False, timeout=self.params.connect_timeout)
            if not r.ok:
                raise CommandFailed(self.host, self.port, f"fresh login ran `true` -> {r.exit_status}",
                                    r.exit_status, r.stderr)
        finally:
            other.close()
        return time.monotonic() - start

    # -- commands -------------------------------------------------------------------------------------

    def wrap(self, command: str, *, sudo: bool = True, env: dict[str, str] | None = None) -> str:
        """The string sshd runs: `[sudo -n -H --] [env K=V] sh -c <quoted>` (env is argv: no secrets)."""
        parts = []
        if sudo and not self.is_root:
            parts.append("sudo -n -H --")
        if env:
            bad = [k for k in env if not _ENV_NAME_RE.match(k)]
            if bad:
                raise ValueError(f"invalid environment variable name(s): {bad}")
            parts.append("env " + " ".join(f"{k}={_q(v)}" for k, v in env.items()))
        parts.append(f"sh -c {_q(command)}")
        return " ".join(parts)

    def run(
        self,
        command: str,
        *,
        sudo: bool = True,
        timeout: float | None = 300,
        stdin: bytes | str | None = None,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        """Run one command on a fresh exec channel (no PTY); secrets go in `stdin`, which is never logged."""
        wire = self.wrap(command, sudo=sudo, env=env)
        status, out, err, duration = self._exec(wire, command, stdin, timeout)
        stderr = err.decode("utf-8", errors="replace")
        if sudo and not self.is_root and status == 1 and _SUDO_PASSWORD_RE.search(stderr):
            raise SudoPasswordRequired(
                self.host, self.port,
                f"user {self.user!r} cannot run `sudo -n` without a password "
                f"({stderr.strip().splitlines()[0]}); give it NOPASSWD sudo or connect as root",
            )
        log.debug("%s:%s rc=%s %.3fs: %s", self.host, self.port, status, duration, command)
        return CommandResult(command, status, out.decode("utf-8", errors="replace"), stderr, duration)

    def _exec(
        self, wire: str, display: str, stdin: bytes | str | None, timeout: float | None
    ) -> tuple[int, bytes, bytes, float]:
        """Drive one channel: feed stdin, drain stdout+stderr together, finish on EOF then exit status."""
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        try:
            chan = self._transport.open_session(timeout=self.params.connect_timeout)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise TransportError(self.host, self.port, f"connection lost, cannot open a channel: {e}") from e
        self.round_trips += 1
        data = stdin.encode() if isinstance(stdin, str) else stdin
        pending = data or None
        sent = 0
        out, err = bytearray(), bytearray()
        sel = selectors.DefaultSelector()
        try:
            chan.exec_command(wire)
            if pending is None:
                chan.shutdown_write()
            sel.register(chan, selectors.EVENT_READ)
            while True:
                while chan.recv_ready():
                    out += chan.recv(1 << 16)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(1 << 16)
                if pending is not None:
                    if chan.eof_received or chan.closed:
                        pending = None
                    elif chan.send_ready():
                        sent += chan.send(pending[sent : sent + (1 << 15)])
                        if sent >= len(pending):
                            pending = None
                            chan.shutdown_write()
                # EOF first, then emptiness: data always precedes EOF, so nothing can be lost
                eof = chan.eof_received or chan.closed
                if eof and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    self._abort(chan)
                    raise CommandTimeout(
                        self.host, self.port,
                        f"command exceeded its {timeout:g}s timeout and was abandoned: {display[:200]}",
                    )
                wait = 0.5 if pending is None else 0.005
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - now))
                sel.select(wait)
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            got = chan.status_event.wait(remaining if remaining is not None else 30.0)
            if not got and deadline is not None:
                self._abort(chan)
                raise CommandTimeout(
                    self.host, self.port, f"no exit status within {timeout:g}s: {display[:200]}"
                )
            status = chan.exit_status
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise TransportError(self.host, self.port, f"connection lost while running a command: {e}") from e
        finally:
            sel.close()
            chan.close()
        return status, bytes(out), bytes(err), time.monotonic() - start

    def _abort(self, chan: paramiko.Channel) -> None:
        """Close only this channel; the transport stays up for later commands.

        The remote process is NOT killed (sshd neither signals nor reaps it on channel close, and OpenSSH
        9.2 ignored an RFC 4254 `signal` request here): wrap long jobs in timeout(1) on the host.
        """
        chan.close()

    # -- files ----------------------------------------------------------------------------------------

    def _sftp_client(self) -> paramiko.SFTPClient:
        """One SFTP subsystem per session, opened on first use."""
        with self._lock:
            if self._sftp is None:
                self._sftp = paramiko.SFTPClient.from_transport(self._transport)
                self.round_trips += 1
            assert self._sftp is not None
            return self._sftp

    def _staging_dir(self) -> str:
        """A fresh 0700 dir under /var/tmp owned by the login user; mkdir fails rather than follow a plant."""
        if self._private_dir is None:
            d = f"/var/tmp/.hive-{self.user}-{uuid.uuid4().hex[:12]}"
            try:
                self._sftp_client().mkdir(d, 0o700)
            except OSError as e:
                raise CommandFailed(self.host, self.port, f"cannot create staging dir {d}: {e}") from e
            self.round_trips += 1
            self._private_dir = d
        return self._private_dir

    def _sftp_write(self, path: str, data: bytes, mode: int) -> None:
        """Create exclusively, set the mode before any byte lands, then write."""
        sftp = self._sftp_client()
        self.round_trips += 1
        try:
            with sftp.open(path, "wx") as fh:
                fh.chmod(mode)
                fh.set_pipelined(True)
                fh.write(data)
        except OSError as e:
            with contextlib.suppress(OSError):
                sftp.remove(path)
            raise CommandFailed(self.host, self.port, f"cannot write {path} over SFTP: {e}") from e

    def stage_file(
        self, data: bytes, path: str, mode: str = "0644", owner: str = "root", group: str = "root"
    ) -> str:
        """Write a candidate `<dir>/.<name>.hive-<uuid>` next to path (same fs, so a later mv is atomic)."""
        if not posixpath.isabs(path) or path.endswith("/"):
            raise ValueError(f"stage_file needs an absolute file path, got {path!r}")
        if not _MODE_RE.match(mode):
            raise ValueError(f"mode must be octal like '0644', got {mode!r}")
        for name in (owner, group):
            if not _ACCOUNT_RE.match(name):
                raise ValueError(f"invalid owner/group name {name!r}")
        directory, name = posixpath.split(path)
        cand = posixpath.join(directory, f".{name}.hive-{uuid.uuid4().hex}")
        if self.is_root:
            self._sftp_write(cand, data, int(mode, 8))
            if (owner, group) != ("root", "root"):
                r = self.run(
                    f"chown -- {_q(owner)}:{_q(group)} {_q(cand)} && chmod -- {mode} {_q(cand)} "
                    f"|| {{ rc=$?; rm -f -- {_q(cand)}; exit $rc; }}",
                    sudo=False, timeout=60,
                )
                if not r.ok:
                    msg = f"cannot set owner of {cand}: {r.stderr.strip()}"
                    raise CommandFailed(self.host, self.port, msg, r.exit_status, r.stderr)
            return cand
        tmp = f"{self._staging_dir()}/{uuid.uuid4().hex}"
        self._sftp_write(tmp, data, 0o600)
        r = self.run(
            f"install -m {mode} -o {_q(owner)} -g {_q(group)} -- {_q(tmp)} {_q(cand)}; rc=$?; "
            f"rm -f -- {_q(tmp)}; exit $rc",
            sudo=True, timeout=60,
        )
        if not r.ok:
            raise CommandFailed(self.host, self.port, f"cannot install candidate {cand}: {r.stderr.strip()}",
                                r.exit_status, r.stderr)
        return cand

    def upload(
        self, data: bytes, path: str, mode: str = "0644", owner: str = "root", group: str = "root"
    ) -> None:
        """stage_file, then an atomic rename(2) onto path (`mv -f` in the same directory)."""
        cand = self.stage_file(data, path, mode, owner, group)
        r = self.run(f"mv -f -- {_q(cand)} {_q(path)} || {{ rc=$?; rm -f -- {_q(cand)}; exit $rc; }}",
                     sudo=True, timeout=60)
        if not r.ok:
            raise CommandFailed(self.host, self.port, f"cannot rename {cand} onto {path}: {r.stderr.strip()}",
                                r.exit_status, r.stderr)

    def read_file(self, path: str, sudo: bool = True) -> bytes | None:
        """Whole file content in one command, or None when it does not exist."""
        cmd = f"[ -e {_q(path)} ] || exit {_READ_MISSING}; exec cat -- {_q(path)}"
        status, out, err, _ = self._exec(self.wrap(cmd, sudo=sudo), cmd, None, 300)
        stderr = err.decode("utf-8", errors="replace")
        if status == _READ_MISSING and not err:
            return None
        if status != 0:
            if sudo and not self.is_root and _SUDO_PASSWORD_RE.search(stderr):
                raise SudoPasswordRequired(self.host, self.port,
                                           f"user {self.user!r} cannot run `sudo -n` without a password")
            raise CommandFailed(self.host, self.port, f"cannot read {path}: {stderr.strip()}", status, stderr)
        return out

    # -- teardown -------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close everything; never raises, because nornir's close_connection would keep a broken entry."""
        with contextlib.suppress(Exception):
            if self._sftp is not None and self._private_dir is not None and self._transport.is_active():
                self._sftp.rmdir(self._private_dir)
        with contextlib.suppress(Exception):
            if self._sftp is not None:
                self._sftp.close()
        self._sftp = None
        for t in [self._transport, *reversed(self._jumps)]:
            with contextlib.suppress(Exception):
                t.close()


# ---------------------------------------------------------------------------------------------- nornir


class HiveSSH:
    """Nornir connection plugin `hive_ssh`: `host.get_connection("hive_ssh", cfg)` returns an SSHSession."""

    connection: SSHSession | None = None

    def open(
        self,
        hostname: str | None,
        username: str | None,
        password: str | None,
        port: int | None,
        platform: str | None,
        extras: dict[str, Any] | None = None,
        configuration: Config | None = None,
    ) -> None:
        """Resolve settings and connect; nothing is cached by nornir if this raises."""
        self.connection = connect(build_params(hostname, username, password, port, extras, configuration))

    def close(self) -> None:
        """Close the session (idempotent)."""
        if self.connection is not None:
            self.connection.close()


def host_extras(host: Host) -> dict[str, Any]:
    """hive_ssh extras plus the inventory name (ssh_config lookups) and the site's `hive_ssh_config` variable."""
    extras = dict(host.get_connection_parameters(CONNECTION_NAME).extras or {})
    extras.setdefault("host_name", str(host.name))
    site_cfg = host.get("hive_ssh_config", None)
    if site_cfg:
        path = Path(str(site_cfg)).expanduser()
        if not path.is_absolute() and extras.get("known_hosts"):
            path = Path(str(extras["known_hosts"])).parents[2] / path  # <root>/.hive/<stage>/known_hosts
        extras["ssh_config"] = str(path)
    return extras


def _open(host: Host, config: Config) -> SSHSession:
    """Open (or reuse) the host's hive_ssh connection with host_extras()."""
    if CONNECTION_NAME not in host.connections:
        host.open_connection(CONNECTION_NAME, configuration=config, extras=host_extras(host))
    session: SSHSession = host.connections[CONNECTION_NAME].connection
    return session


def session_for(host: Host, config: Config) -> SSHSession:
    """The host's cached session, reopened once if it died (reboot, sshd restart, idle drop)."""
    session = _open(host, config)
    if session.is_alive():
        return attach_for_host(host, session)
    log.info("%s: cached SSH session is dead, reconnecting", host.name)
    with contextlib.suppress(Exception):
        host.close_connection(CONNECTION_NAME)
    host.connections.pop(CONNECTION_NAME, None)
    return attach_for_host(host, _open(host, config))  # the proxy forward (forward.py) lives on the new session
