"""What keepalived is doing on a host: each VRRP instance's state (its DATA dump) and which VIPs the host holds.

Read-only probes plus parsers, shared by the keepalived task's proof, the VIP gate and the failover step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from hive_nornir.transport import CommandResult

Runner = Callable[[str], CommandResult]
FAULT = "FAULT"
POLL_S = 0.05

# SIGUSR1 (keepalived --signum=DATA) makes keepalived write /tmp/keepalived.data; the first `State =` after a
# `VRRP Instance =` line is that instance's state (MASTER, BACKUP, FAULT, INIT). Bounded: 3 s for the dump.
STATE_SCRIPT = r"""pid=$(systemctl show -p MainPID --value keepalived 2>/dev/null)
if [ -z "$pid" ] || [ "$pid" = 0 ]; then echo running=no; exit 0; fi
f=/tmp/keepalived.data
rm -f "$f"
kill -s "$(keepalived --signum=DATA)" "$pid" 2>/dev/null || { echo running=no; exit 0; }
i=0; while [ ! -s "$f" ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done
sleep 0.1
echo running=yes
sed -n 's/^ *VRRP Instance = \(.*\)$/instance=\1/p; s/^ *State = \(.*\)$/state=\1/p' "$f" 2>/dev/null
"""

ADDR_SCRIPT = "ip -o -4 addr show 2>/dev/null | awk '{sub(/\\/.*/, \"\", $4); print $2 \" \" $4}'"


def parse_states(output: str) -> dict[str, str]:
    """Instance -> state from STATE_SCRIPT's output; {} when keepalived is not running."""
    states: dict[str, str] = {}
    current: str | None = None
    for line in output.splitlines():
        key, _, value = line.partition("=")
        if key == "instance":
            current = value.strip()
        elif key == "state" and current is not None:
            states[current] = value.strip()
            current = None
    return states


def states(run: Runner) -> dict[str, str]:
    """Each instance's VRRP state on the host `run` reaches."""
    return parse_states(run(STATE_SCRIPT).stdout)


def wait_states(run: Runner, names: Iterable[str], timeout: float,
                settle: Callable[[dict[str, str]], bool]) -> dict[str, str]:
    """Poll the named instances' states until `settle` accepts them or `timeout` passes; the last seen."""
    wanted = list(names)
    deadline = time.monotonic() + timeout
    while True:
        seen = states(run)
        got = {n: seen.get(n, "") for n in wanted}
        if settle(got) or time.monotonic() >= deadline:
            return got
        time.sleep(0.2)


def parse_addresses(output: str) -> set[str]:
    """Every IPv4 address ADDR_SCRIPT printed (interface and address per line)."""
    return {line.split()[1] for line in output.splitlines() if len(line.split()) == 2}


def held(run: Runner, vips: Iterable[str]) -> bool:
    """Whether this host holds every one of the VIPs (`ip -o -4 addr`)."""
    have = parse_addresses(run(ADDR_SCRIPT).stdout)
    return all(v in have for v in vips)


def holders(runners: dict[str, Runner], vips: Iterable[str]) -> list[str]:
    """The hosts that hold the VIPs now, in the given order."""
    want = list(vips)
    out = []
    for host, run in runners.items():
        have = parse_addresses(run(ADDR_SCRIPT).stdout)
        if any(v in have for v in want):
            out.append(host)
    return out


def wait_holders(runners: dict[str, Runner], vips: Iterable[str], timeout: float,
                 settle: Callable[[list[str]], bool]) -> tuple[list[str], float]:
    """Poll every host until `settle` accepts the holders or `timeout` passes: (holders, seconds waited)."""
    want = list(vips)
    start = time.monotonic()
    while True:
        now = holders(runners, want)
        waited = time.monotonic() - start
        if settle(now) or waited >= timeout:
            return now, waited
        time.sleep(POLL_S)
