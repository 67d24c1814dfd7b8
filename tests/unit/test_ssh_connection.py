"""ssh-connection waits for a host that answers late: a real local sshd behind a TCP listener started late."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from local_sshd import LocalSSHD, free_port, running_sshd

from hive_nornir.engine.errors import StepFailed
from hive_nornir.tasks.ssh.ssh_connection import DEFAULT_WAIT_S, wait_for_connection, wait_seconds
from hive_nornir.transport import ConnectionRefused, SSHSession, build_params, connect


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    for s in (src, dst):
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


class LateListener:
    """Listens on `port` only once opened, then relays every connection to the test sshd (a booting host)."""

    def __init__(self, port: int, target: int) -> None:
        self.port, self.target = port, target
        self.sock: socket.socket | None = None

    def open(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        assert self.sock is not None
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


@pytest.fixture(scope="module")
def sshd() -> Iterator[LocalSSHD]:
    """A root-only throwaway sshd on 127.0.0.1 (no test users or sudoers: other suites create those)."""
    with running_sshd("hive-wait-") as server:
        yield server


@pytest.fixture
def late(sshd: LocalSSHD) -> Iterator[LateListener]:
    listener = LateListener(free_port(), sshd.port)
    yield listener
    listener.close()


def test_waits_until_the_host_answers_then_logs_in(sshd: LocalSSHD, late: LateListener) -> None:
    """Nothing listens at first (refused); the listener opens after two refusals; the wait ends in a login."""
    params = build_params("127.0.0.1", "root", None, late.port, sshd.extras(connect_retries=0))
    refused: list[str] = []
    sessions: list[SSHSession] = []

    def attempt() -> None:
        try:
            sessions.append(connect(params))
        except ConnectionRefused as exc:
            refused.append(str(exc))
            if len(refused) == 2:
                late.open()  # the host finishes booting while we wait
            raise

    attempts = wait_for_connection(attempt, DEFAULT_WAIT_S)
    try:
        assert attempts == 3 and len(refused) == 2
        assert sessions[0].run("echo up").stdout == "up\n"
    finally:
        for s in sessions:
            s.close()


def test_gives_up_after_the_deadline_with_a_clear_error(sshd: LocalSSHD) -> None:
    """No listener ever: refused until the (fake-clock) deadline, then the last error says how long it waited."""
    params = build_params("127.0.0.1", "root", None, free_port(), sshd.extras(connect_retries=0))
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    with pytest.raises(ConnectionRefused, match=r"still no answer after waiting 5 s \(5 attempt\(s\)"):
        wait_for_connection(lambda: connect(params), 5, clock=lambda: now[0], sleep=sleep)
    assert slept == [0.5, 1.0, 2.0, 1.5]  # back-off, the last pause cut to the deadline


def test_wait_is_a_bounded_site_setting() -> None:
    assert wait_seconds(None) == 20 and wait_seconds(90) == 90 and wait_seconds("0") == 0
    for bad in (-1, 1801, "soon", True):
        with pytest.raises(StepFailed, match="hive_ssh_wait_timeout"):
            wait_seconds(bad)
