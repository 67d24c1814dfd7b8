"""The session: commands on exec channels (exit status, sudo -n, timeouts), file staging, upload and read."""

from __future__ import annotations

import contextlib
import logging
import posixpath
import re
import selectors
import shlex
import socket
import threading
import time
import uuid
from dataclasses import dataclass

import paramiko

from hive_nornir.transport.connect import dial
from hive_nornir.transport.describe import describe_command
from hive_nornir.transport.errors import (
    CommandFailed,
    CommandTimeout,
    ConnectionLost,
    NoExitStatus,
    SudoPasswordRequired,
    TransportError,
)
from hive_nornir.transport.keepalive import EXIT_SIGNAL_ATTR, Heartbeat, KeepaliveTransport
from hive_nornir.transport.params import ConnectParams

log = logging.getLogger(__name__)

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


def _q(s: str) -> str:
    """Shell-quote one argument."""
    return shlex.quote(s)


HIDDEN_COMMAND = "(secret command)"


def wire(command: str, *, sudo: bool, is_root: bool, env: dict[str, str] | None,
         data: bytes | None) -> tuple[str, bytes]:
    """What sshd runs and what it reads: the argv never holds the script or the data, both travel on stdin.

    Without data: `[sudo -n -H --] [env K=V] sh -s` reading `{ script } </dev/null` (the shell parses the whole
    block before running it, so no command can eat the script; no extra process). With data: `sh -c 'eval
    "$(head -c N)"'`: head reads exactly the N script bytes, the commands then read the data that follows."""
    parts = []
    if sudo and not is_root:
        parts.append("sudo -n -H --")
    if env:
        bad = [k for k in env if not _ENV_NAME_RE.match(k)]
        if bad:
            raise ValueError(f"invalid environment variable name(s): {bad}")
        parts.append("env " + " ".join(f"{k}={_q(v)}" for k, v in env.items()))
    script = command.encode()
    if data is None:
        parts.append("sh -s")
        return " ".join(parts), b"{\n" + script + b"\n} </dev/null\n"
    parts.append("sh -c " + _q(f'eval "$(head -c {len(script)})"'))
    return " ".join(parts), script + data


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
        self.lost = ""  # why the heartbeat gave the host up ("" while it answers)
        self._heartbeat: Heartbeat | None = None
        if isinstance(transport, KeepaliveTransport) and params.keepalive > 0:
            self._heartbeat = Heartbeat(transport, params.keepalive, params.keepalive_count_max, self._dead,
                                        f"{self.host}:{self.port}")
            self._heartbeat.start()

    # -- liveness -------------------------------------------------------------------------------------

    @property
    def tcp_nodelay(self) -> bool:
        """Whether Nagle is off on our own socket (False when tunnelled through a bastion or command)."""
        if self._tcp is None:
            return False
        return bool(self._tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    def is_alive(self) -> bool:
        """Cheap local check: the transport is up and the heartbeat has not given the host up."""
        return not self.lost and self._transport.is_active()

    def _dead(self, why: str) -> None:
        """Heartbeat verdict: remember why, close the transport so every blocked read ends now."""
        self.lost = why
        with contextlib.suppress(Exception):
            self._transport.close()

    def _lost(self, what: str, cause: BaseException | None = None) -> ConnectionLost:
        """The unreachable error for a connection that died while `what` was going on."""
        why = self.lost or (f"the connection closed ({cause})" if cause else "the host closed the connection")
        return ConnectionLost(self.host, self.port, f"connection lost while {what}: {why}")

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

    def run(
        self,
        command: str,
        *,
        sudo: bool = True,
        timeout: float | None = 300,
        stdin: bytes | str | None = None,
        env: dict[str, str] | None = None,
        secret: bool = False,
    ) -> CommandResult:
        """Run one command on a fresh exec channel (no PTY); script and `stdin` travel on stdin, never logged.

        `secret`: the script itself holds a secret, so logs and errors name it `(secret command)`."""
        display = HIDDEN_COMMAND if secret else describe_command(command)
        status, out, err, duration = self._exec(command, sudo, env, stdin, timeout, display)
        stderr = err.decode("utf-8", errors="replace")
        if sudo and not self.is_root and status == 1 and _SUDO_PASSWORD_RE.search(stderr):
            raise SudoPasswordRequired(
                self.host, self.port,
                f"user {self.user!r} cannot run `sudo -n` without a password "
                f"({stderr.strip().splitlines()[0]}); give it NOPASSWD sudo or connect as root",
            )
        log.debug("%s:%s rc=%s %.3fs: %s", self.host, self.port, status, duration, display)
        return CommandResult(command, status, out.decode("utf-8", errors="replace"), stderr, duration)

    def _exec(
        self, command: str, sudo: bool, env: dict[str, str] | None, stdin: bytes | str | None,
        timeout: float | None, display: str,
    ) -> tuple[int, bytes, bytes, float]:
        """Drive one channel: feed script+stdin, drain stdout+stderr together, finish on EOF then exit status."""
        data = stdin.encode() if isinstance(stdin, str) else stdin
        argv, payload = wire(command, sudo=sudo, is_root=self.is_root, env=env, data=data)
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        try:
            chan = self._transport.open_session(timeout=self.params.connect_timeout)
        except paramiko.ChannelException as e:
            raise TransportError(self.host, self.port, f"sshd refused a new channel: {e}") from e
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise self._lost("opening a channel", e) from e
        self.round_trips += 1
        pending: bytes | None = payload
        sent = 0
        out, err = bytearray(), bytearray()
        sel = selectors.DefaultSelector()
        try:
            chan.exec_command(argv)
            sel.register(chan, selectors.EVENT_READ)
            while True:
                while chan.recv_ready():
                    out += chan.recv(1 << 16)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(1 << 16)
                if pending is not None:
                    if chan.eof_received or chan.closed:
                        pending = None  # the command stopped reading (sudo refused, exited early)
                    elif chan.send_ready():
                        try:
                            sent += chan.send(pending[sent : sent + (1 << 15)])
                        except OSError:
                            if not self.is_alive():
                                raise
                            pending = None  # the channel closed between the check and the send
                        if pending is not None and sent >= len(pending):
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
                        f"command exceeded its {timeout:g}s timeout and was abandoned: {display}",
                        display, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                    )
                wait = 0.5 if pending is None else 0.005
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - now))
                sel.select(wait)
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            got = chan.status_event.wait(remaining if remaining is not None else 30.0)
            if not got and deadline is not None:
                self._abort(chan)
                raise CommandTimeout(self.host, self.port, f"no exit status within {timeout:g}s: {display}",
                                     display, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
            status = chan.exit_status
            if status < 0:  # paramiko's -1: the channel closed and no exit-status came
                raise self._without_status(chan, display)
        except (paramiko.SSHException, EOFError, OSError) as e:
            if not self.is_alive():
                raise self._lost(f"running `{display}`", e) from e
            raise TransportError(self.host, self.port, f"channel error while running `{display}`: {e}") from e
        finally:
            sel.close()
            chan.close()
        return status, bytes(out), bytes(err), time.monotonic() - start

    def _without_status(self, chan: paramiko.Channel, display: str) -> TransportError:
        """A channel that closed without an exit status: the host died (unreachable) or a signal killed the command."""
        alive = self.is_alive() and (self._heartbeat.check() if self._heartbeat is not None else True)
        if not alive:
            return self._lost(f"running `{display}`")
        signal = str(getattr(chan, EXIT_SIGNAL_ATTR, "") or "")
        if signal:
            return NoExitStatus(self.host, self.port, f"`{display}` was killed by signal {signal}", signal)
        return NoExitStatus(self.host, self.port, f"`{display}` ended without an exit status (sshd closed the channel)")

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
                try:
                    self._sftp = paramiko.SFTPClient.from_transport(self._transport)
                except (paramiko.SSHException, EOFError, OSError) as e:
                    if not self.is_alive():
                        raise self._lost("starting SFTP", e) from e
                    raise TransportError(self.host, self.port, f"cannot start SFTP: {e}") from e
                self.round_trips += 1
            assert self._sftp is not None
            return self._sftp

    def _staging_dir(self) -> str:
        """A fresh 0700 dir under /var/tmp owned by the login user; mkdir fails rather than follow a plant."""
        if self._private_dir is None:
            d = f"/var/tmp/.hive-{self.user}-{uuid.uuid4().hex[:12]}"
            try:
                self._sftp_client().mkdir(d, 0o700)
            except (paramiko.SSHException, EOFError, OSError) as e:
                if not self.is_alive():
                    raise self._lost(f"creating {d}", e) from e
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
        except (paramiko.SSHException, EOFError, OSError) as e:
            if not self.is_alive():
                raise self._lost(f"writing {path}", e) from e
            with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
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
        status, out, err, _ = self._exec(cmd, sudo, None, None, 300, describe_command(cmd))
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
        if self._heartbeat is not None:
            self._heartbeat.stop()
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


def connect(params: ConnectParams) -> SSHSession:
    """Dial (with retries) and wrap the transport in a session."""
    link = dial(params)
    return SSHSession(params, link.transport, list(link.jumps), link.tcp)
