"""Failures named for what they are, on real lab hosts: a paused or stopped host is unreachable within seconds,
a refused upload is failed with its reason, and a secret command never shows in `ps` (site tr1, 10.135.0.0/24)."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import own_lab

from hive_nornir.api import Hive
from hive_nornir.engine.context import HostContext
from hive_nornir.engine.outcome import FAILED, OK, UNREACHABLE
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File

pytestmark = pytest.mark.lab

Lab = Any  # tests/lab/conftest.py:Lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Three hosts of our own site, so pausing and stopping them disturbs no other module's lab."""
    with own_lab(tmp_path_factory.mktemp("tr1"), "tr1", "10.135.0.0/24", 3, separate=False) as built:
        yield built


@pytest.fixture(scope="module")
def hive(lab: Lab) -> Hive:
    return Hive(root=lab.root, stage="private")


def _docker(*args: str) -> None:
    subprocess.run(["docker", *args], check=True, capture_output=True, timeout=120)


def test_an_upload_refused_by_the_host_is_failed_with_the_reason(lab: Lab, hive: Hive) -> None:
    """Issue 10 item 14: `install: invalid user 'zabbix'` was reported as unreachable."""
    victim = lab.hosts[0]

    def agent_conf(ctx: HostContext) -> None:
        ctx.ensure([File(path="/etc/hive-tr-agent.conf", content=f"{ctx.name}\n",
                         owner="zabbix" if ctx.name == victim else "root", group="root")])

    report = hive.run_task(agent_conf, name="upload-test")
    status = {o.host: (o.status, o.error) for o in report.outcomes}
    state, error = status.pop(victim)
    assert state == FAILED and "invalid user 'zabbix'" in error, error
    assert {s for s, _ in status.values()} == {"changed"}
    rc, _ = lab.docker_exec(victim, "test -e /etc/hive-tr-agent.conf")
    assert rc == 1  # nothing half-installed
    _, left = lab.docker_exec(victim, "ls -a /etc | grep -c '^.hive-tr-agent.conf.hive-' || true")
    assert left.strip() == "0"


def test_a_secret_command_never_shows_in_ps(lab: Lab, hive: Hive) -> None:
    """Issue 10 item 17: the script went into `sh -c` argv; now it travels on stdin."""
    host = lab.hosts[0]
    secret = f"tok{uuid.uuid4().hex}"
    marker = f"hvtps{uuid.uuid4().hex[:8]}"
    seen: list[str] = []
    done = threading.Event()

    def scan() -> None:
        for _ in range(600):  # bounded: ~60 s at most
            if done.is_set():
                return
            _, out = lab.docker_exec(host, "ps -eo args", timeout=30)
            seen.append(out)
            time.sleep(0.1)

    def task(ctx: HostContext) -> None:
        ctx.ensure([Command(f"printf %s {secret} >/dev/null; sh -c ': {marker}; sleep 3'", secret=True)])

    scanner = threading.Thread(target=scan)
    scanner.start()
    try:
        report = hive.run_task(task, limit=host, name="secret-test")
    finally:
        done.set()
        scanner.join()
    assert report.exit_code == 0, report.text()
    assert any(marker in out for out in seen), "the scan never overlapped the command"
    assert not [out for out in seen if secret in out]
    assert secret not in report.text()


def test_a_paused_host_is_unreachable_within_seconds_while_the_others_finish(lab: Lab, hive: Hive) -> None:
    """Issue 10 item 15: `docker pause` stalled the run 120 s and was then 'failed: timeout ... set -e'."""
    victim = lab.hosts[1]
    container = lab.container(victim)

    def slow(ctx: HostContext) -> None:
        ctx.run("sleep 1; sleep 5", sudo=False)

    pause = threading.Timer(1.5, _docker, ("pause", container))
    pause.start()
    try:
        report = hive.run_task(slow, name="pause-test")
    finally:
        pause.join()
        _docker("unpause", container)
    status = {o.host: o for o in report.outcomes}
    lost = status.pop(victim)
    assert lost.status == UNREACHABLE and "stopped answering" in lost.error, lost
    assert "sleep 1; sleep 5" in lost.error
    assert all(o.status == OK for o in status.values()), report.text()
    assert lost.seconds < 40, lost  # the keepalive budget (3 s x 3), not the 900 s command timeout
    print(f"\nlab: paused host reported {lost.status} after {lost.seconds:.1f}s: {lost.error}")


def test_a_host_stopped_during_a_command_is_unreachable(lab: Lab, hive: Hive) -> None:
    """Issue 10 item 15: `docker stop` mid-command was 'failed: exit -1'. Last: the host stays stopped."""
    victim = lab.hosts[2]

    def slow(ctx: HostContext) -> None:
        ctx.run("sleep 1; sleep 20", sudo=False)

    stop = threading.Timer(1.5, _docker, ("stop", "-t", "3", lab.container(victim)))
    stop.start()
    try:
        report = hive.run_task(slow, name="stop-test")
    finally:
        stop.join()
    status = {o.host: o for o in report.outcomes}
    gone = status.pop(victim)
    assert gone.status == UNREACHABLE and "exit -1" not in gone.error, gone
    assert "sleep 1; sleep 20" in gone.error
    assert all(o.status == OK for o in status.values()), report.text()
    print(f"\nlab: stopped host reported {gone.status}: {gone.error}")
    assert Path(lab.context_dir).is_dir()
