"""A throwaway sshd on 127.0.0.1 for the transport tests: started here, skipped without sshd/root, fails under CI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hive_nornir.transport import SSHSession, build_params, connect

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def require(ok: bool, why: str) -> None:
    """Skip locally, but fail in CI: there the sshd tests are the proof and must run."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI is set: install openssh-server and sudo, run as root)")
    pytest.skip(why)


def free_port() -> int:
    """A port nobody listens on now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> None:
    """An unencrypted ed25519 key pair at path and path.pub."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hvt", "-f", str(path)], check=True)


@dataclass
class LocalSSHD:
    """A running test sshd and the keys/users to reach it."""

    port: int
    root: Path
    key: Path
    host_pub: Path
    proc: subprocess.Popen[bytes]
    sessions: list[SSHSession] = field(default_factory=list)

    def extras(self, **kw: Any) -> dict[str, Any]:
        return {"key_file": str(self.key), "known_hosts": str(self.root / "known_hosts"), **kw}

    def connect(self, user: str = "root", port: int | None = None, **kw: Any) -> SSHSession:
        s = connect(build_params("127.0.0.1", user, None, port or self.port, self.extras(**kw)))
        self.sessions.append(s)
        return s


def start_sshd(cfg: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """Start a test sshd with this config and wait (10 s at most) until it accepts on 127.0.0.1:port."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"test sshd did not start: {log_path.read_text()}")
            time.sleep(0.05)


def sshd_config(root: Path, port: int, authorized_keys: str, extra: str = "") -> Path:
    """A key-only config listening on 127.0.0.1:port with root's host key under root."""
    cfg = root / "sshd_config"
    cfg.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root}/host_ed25519\nAuthorizedKeysFile {authorized_keys}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"PermitRootLogin prohibit-password\nPidFile {root}/sshd.pid\n{extra}")
    return cfg


@contextmanager
def running_sshd(prefix: str, prepare: Any = None, authorized_keys: str = "", extra: str = "") -> Iterator[LocalSSHD]:
    """A throwaway sshd: keys under a fresh 0755 dir (sshd reads it as non-root users too), stopped and removed after.

    prepare(root) runs after the keys exist and before sshd starts (test users, authorized_keys per user);
    authorized_keys may name {root}; the default is the client key alone.
    """
    require(Path(SSHD).exists(), "sshd binary absent (apt-get install openssh-server)")
    require(os.geteuid() == 0, "needs root to run sshd")
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    keygen(root / "host_ed25519")
    keygen(root / "client")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = free_port()
    proc = None
    try:
        if prepare is not None:
            prepare(root)
        cfg = sshd_config(root, port, authorized_keys.format(root=root) or f"{root}/client.pub", extra)
        proc = start_sshd(cfg, port, root / "sshd.log")
        server = LocalSSHD(port, root, root / "client", root / "host_ed25519.pub", proc)
        try:
            yield server
        finally:
            for s in server.sessions:
                s.close()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
