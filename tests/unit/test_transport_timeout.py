"""ConnectTimeout and the accept-then-close port, against local sockets that never speak SSH.

Stand-in: a listening socket on 127.0.0.1 that never sends the SSH banner, because a real sshd that hangs
before its banner cannot be produced on demand; the timeout is bounded (1 s, no retries).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hive_nornir.transport import build_params, connect
from hive_nornir.transport.errors import ConnectTimeout


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose backlog completes the TCP handshake while nobody ever answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        yield server.getsockname()[1]


@pytest.fixture
def closing_port() -> Iterator[int]:
    """A port that accepts and closes at once, as docker-proxy does when the container's sshd is stopped."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        for _ in range(500):  # bounded: at most ~100 s even if the test hangs
            if stop.is_set():
                return
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.close()

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    yield server.getsockname()[1]
    stop.set()
    worker.join(timeout=5)
    server.close()


def params(port: int, tmp_path: Path):  # type: ignore[no-untyped-def]
    return build_params("127.0.0.1", "nobody", None, port,
                        {"connect_timeout": 1, "connect_retries": 0, "known_hosts": str(tmp_path / "kh")})


def test_no_banner_is_a_readable_connect_timeout(silent_port: int, tmp_path: Path) -> None:
    with pytest.raises(ConnectTimeout) as info:
        connect(params(silent_port, tmp_path))
    assert str(info.value) == f"127.0.0.1:{silent_port}: SSH handshake did not finish within 1s"


PROBE = """
import logging, sys
from hive_nornir.transport import build_params, connect
from hive_nornir.transport.paramiko_log import paramiko_logging
logging.basicConfig(level=logging.WARNING)  # what the CLI does without -v
paramiko_logging(sys.argv[3] == "verbose")
try:
    connect(build_params("127.0.0.1", "nobody", None, int(sys.argv[1]),
                         {"connect_timeout": 2, "connect_retries": 0, "known_hosts": sys.argv[2]}))
except Exception as exc:
    print(type(exc).__name__, exc)
"""


@pytest.mark.parametrize("mode", ["quiet", "verbose"])
def test_accept_then_close_is_one_readable_error_and_paramiko_logs_only_when_verbose(
        closing_port: int, tmp_path: Path, mode: str) -> None:
    """In a child process with the CLI's logging setup: pytest itself hooks every logger, so it cannot see this."""
    done = subprocess.run([sys.executable, "-c", PROBE, str(closing_port), str(tmp_path / "kh"), mode],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith(f"ConnectionRefused 127.0.0.1:{closing_port}: connection closed before the SSH")
    if mode == "quiet":
        assert done.stderr == ""
    else:
        assert "Traceback" in done.stderr and "Error reading SSH protocol banner" in done.stderr


def test_banner_error_and_socket_error_read_as_two_parts() -> None:
    """paramiko prints 'Error reading SSH protocol banner[Errno 104] Connection reset by peer' as one word salad."""
    from paramiko import SSHException

    from hive_nornir.transport.connect import handshake_detail

    glued = SSHException("Error reading SSH protocol banner[Errno 104] Connection reset by peer")
    assert handshake_detail(glued) == "Error reading SSH protocol banner: [Errno 104] Connection reset by peer"
    assert handshake_detail(SSHException("Error reading SSH protocol banner")) == "Error reading SSH protocol banner"
    assert handshake_detail(EOFError()) == "EOFError"
