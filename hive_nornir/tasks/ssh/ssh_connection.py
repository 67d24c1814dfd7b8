"""ssh-connection: wait until the host answers (hive-builder: wait_for_connection, timeout 20), record its host key
on first contact, learn its facts, and refuse site values that would lock out our next login (before any step of
the phase changes the host)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.tasks.ssh.reach import refuse_lockouts
from hive_nornir.transport.errors import ConnectionRefused, ConnectTimeout, HostUnreachable

DEFAULT_WAIT_S = 20  # hive-builder's wait_for_connection timeout
MAX_WAIT_S = 1800
WAIT_VAR = "hive_ssh_wait_timeout"
NOT_YET = (ConnectionRefused, ConnectTimeout, HostUnreachable)  # booting: retried; auth/host key errors are not
_PAUSES_S = (0.5, 1.0, 2.0, 4.0)


def wait_seconds(value: Any) -> float:
    """The site's wait (seconds, 0-MAX_WAIT_S), DEFAULT_WAIT_S when unset."""
    if value is None:
        return float(DEFAULT_WAIT_S)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not 0 <= seconds <= MAX_WAIT_S:
        raise StepFailed(f"{WAIT_VAR} must be a number of seconds from 0 to {MAX_WAIT_S}, not {value!r}")
    return seconds


def wait_for_connection(connect: Callable[[], object], timeout: float,
                        clock: Callable[[], float] = time.monotonic,
                        sleep: Callable[[float], None] = time.sleep) -> int:
    """Call connect() until it stops failing with "not reachable yet" or timeout seconds have passed (checked
    between attempts, so one attempt's own connect timeout can overrun it); returns the attempts made."""
    start = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            connect()
            return attempt
        except NOT_YET as exc:
            left = timeout - (clock() - start)
            if left <= 0:
                raise type(exc)(exc.host, exc.port, f"{exc.message}; still no answer after waiting {timeout:g} s "
                                f"({attempt} attempt(s); {WAIT_VAR} sets the wait)") from exc
            sleep(min(_PAUSES_S[min(attempt - 1, len(_PAUSES_S) - 1)], left))


def ssh_connection(ctx: TaskContext) -> None:
    """Connecting records the host key (accept-new) in the stage's known_hosts; facts cost one round trip.

    hive_sshd_port and hive_ssh_source_ips are checked against the session's port and address here (facts
    only), so a host whose site values would lock us out drops out of the phase before its first change."""
    attempts = wait_for_connection(lambda: ctx.session, wait_seconds(ctx.var(WAIT_VAR)))
    facts = ctx.facts
    refuse_lockouts(ctx, "setup-hosts")
    ctx.outcome.data["os"] = facts.os_pretty or f"{facts.os_id} {facts.os_version}"
    if attempts > 1:
        ctx.outcome.data["connect_attempts"] = attempts

