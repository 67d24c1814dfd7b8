"""Benchmark: one SSH command's round trip over hive_ssh against a local sshd, with and without sudo and Nagle.

    .venv/bin/python benchmarks/bench_transport_latency.py [--commands 50]

Needs root and openssh-server (the test sshd of tests/unit/local_sshd.py, on 127.0.0.1). Why TCP_NODELAY matters:
Nagle plus delayed ACK costs ~40 ms per command; the transport sets TCP_NODELAY and this shows the difference.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "unit"))

from local_sshd import LocalSSHD, running_sshd

from hive_nornir.transport import SSHSession


def per_command_ms(session: SSHSession, n: int, sudo: bool) -> float:
    """Median wall time of `true` over n sequential commands."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        if not session.run("true", sudo=sudo).ok:
            raise SystemExit("`true` failed on the test sshd")
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


USER = f"hvb_{os.getpid():x}"  # login shell /bin/sh: root's bashrc here starts pyenv and would be measured
SUDOERS = Path(f"/etc/sudoers.d/hive-bench-latency-{os.getpid():x}")


def add_user(root: Path) -> None:
    """A sudo user with /bin/sh as its shell and the client key, for the sshd about to start."""
    subprocess.run(["useradd", "-m", "-p", "*", "-s", "/bin/sh", USER], check=True)
    (root / "authorized_keys").mkdir(mode=0o755)
    (root / "authorized_keys" / USER).write_bytes((root / "client.pub").read_bytes())
    SUDOERS.write_text(f"{USER} ALL=(ALL) NOPASSWD:ALL\n")
    SUDOERS.chmod(0o440)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=50)
    args = parser.parse_args()
    try:
        with running_sshd("hive-bench-latency-", add_user, authorized_keys="{root}/authorized_keys/%u") as sshd:
            report(sshd, args.commands)
    finally:
        SUDOERS.unlink(missing_ok=True)
        subprocess.run(["userdel", "-r", "-f", USER], capture_output=True)


def report(sshd: LocalSSHD, commands: int) -> None:
    """Print connect time and per-command medians."""
    connects = []
    for _ in range(5):
        t0 = time.perf_counter()
        sshd.connect(USER).close()
        connects.append((time.perf_counter() - t0) * 1000)
    s = sshd.connect(USER)
    plain = per_command_ms(s, commands, sudo=False)
    with_sudo = per_command_ms(s, commands, sudo=True)
    assert s._tcp is not None
    s._tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    nagle = per_command_ms(s, commands, sudo=False)
    print(f"connect+auth median {statistics.median(connects):.1f} ms; per command (median of {commands}): "
          f"TCP_NODELAY {plain:.1f} ms, with sudo -n {with_sudo:.1f} ms, Nagle on {nagle:.1f} ms")


if __name__ == "__main__":
    main()
