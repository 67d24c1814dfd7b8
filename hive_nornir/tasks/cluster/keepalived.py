"""keepalived: a floating VIP from site data, changed only through the config transaction.

The candidate keepalived.conf is checked on the host with `keepalived -t -f CANDIDATE` (it checks interfaces on
the host it runs on, anchors.md 5.1), renamed in with a backup, the whole config checked again, keepalived reloaded
(started when it was not running), and kept only if keepalived then runs with no instance in FAULT; any failure
puts the old file back. The VIP gate (exactly one holder) is its own step, after every member applied
(tasks/cluster/vip.py).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.primitives.config_transaction import CANDIDATE, ConfigFile, ConfigTransaction, Script, run_transaction
from hive_nornir.primitives.lines import text_diff
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.probes import FileState, file_probe, parse_file, parse_kv
from hive_nornir.primitives.service import Service
from hive_nornir.tasks.cluster.keepalived_conf import (
    CONF,
    VAR,
    Instance,
    KeepalivedError,
    masked,
    private_ip,
    render,
    site_keepalived,
)
from hive_nornir.tasks.cluster.vrrp_state import FAULT, wait_states

SERVICE = "keepalived"
MAX_CONF_BYTES = 1 << 20
DEADMAN_SECONDS = 120
PROVE_SECONDS = 10.0  # keepalived leaves INIT within an advert or two; FAULT within this time fails the change


@dataclass(frozen=True)
class HostState:
    """What the probe saw: the live file, whether keepalived runs, the interfaces and their IPv4 addresses."""

    conf: FileState
    active: bool
    addresses: dict[str, tuple[str, ...]]  # interface -> its IPv4 addresses (without prefix length)


def probe_script() -> str:
    """Read-only, one exec: the live file, the unit's state, `ip -o -4 addr` per interface, every link name."""
    return "\n".join([
        file_probe(CONF, MAX_CONF_BYTES),
        f"echo active=$(systemctl is-active {SERVICE} 2>/dev/null)",
        "ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, \"\", $2); print \"link=\" $2}'",
        "ip -o -4 addr show 2>/dev/null | awk '{sub(/\\/.*/, \"\", $4); print \"addr=\" $2 \" \" $4}'",
    ])


def parse_state(output: str) -> HostState:
    """The probe's output as a HostState."""
    addresses: dict[str, list[str]] = {}
    for line in output.splitlines():
        key, _, value = line.partition("=")
        if key == "link" and value:
            addresses.setdefault(value.strip(), [])
        elif key == "addr" and " " in value:
            iface, addr = value.split(" ", 1)
            addresses.setdefault(iface, []).append(addr.strip())
    return HostState(parse_file(CONF, output), parse_kv(output).get("active", "").strip() == "active",
                     {k: tuple(v) for k, v in addresses.items()})


def refusals(host: str, own_ip: str, mine: list[Instance], state: HostState) -> list[str]:
    """What keepalived -t does not catch and would break VRRP: an interface missing, our source address not on it."""
    out = []
    for i in mine:
        if i.interface not in state.addresses:
            out.append(f"{i.name}: interface {i.interface} does not exist on {host} "
                       f"(it has {', '.join(sorted(state.addresses)) or 'none'})")
        elif own_ip not in state.addresses[i.interface]:
            out.append(f"{i.name}: unicast_src_ip {own_ip} (hive_private_ip) is not an address of {i.interface} "
                       f"on {host} ({', '.join(state.addresses[i.interface]) or 'no IPv4 address'})")
        for t in i.track_interface:
            if t not in state.addresses:
                out.append(f"{i.name}: track_interface {t} does not exist on {host}")
    return out


def transaction(ctx: TaskContext, text: str, state: HostState, names: list[str]) -> ConfigTransaction:
    """keepalived.conf through the config transaction: `keepalived -t -f` on the candidate, `keepalived -t` on the
    installed file, reload (start when stopped), proven by keepalived running with no instance in FAULT."""

    def prove() -> str:
        states = wait_states(lambda c: ctx.run(c, check=False), names, PROVE_SECONDS,
                             settle=lambda s: all(v in ("MASTER", "BACKUP") for v in s.values()))
        bad = {n: s for n, s in states.items() if s in (FAULT, "", "INIT")}
        if bad:
            return "keepalived after the reload: " + ", ".join(f"{n} is {s or 'not running'}" for n, s in bad.items())
        return ""

    conf = ConfigFile(CONF, text.encode(), existed=state.conf.is_file, mode="0640",
                      validate=("keepalived", "--config-test", f"--use-file={CANDIDATE}"),
                      label="the candidate keepalived.conf")
    # reload when running (SIGHUP keeps the VRRP state); a stopped keepalived is started, never restarted
    reload = Script(shlex.join(["systemctl", "reload-or-restart", SERVICE]) if state.active
                    else shlex.join(["systemctl", "start", SERVICE]))
    rollback = Script(shlex.join(["systemctl", "reload", SERVICE]) if state.active
                      else shlex.join(["systemctl", "stop", SERVICE]))
    return ConfigTransaction(name="keepalived", files=(conf,), validate_whole=("keepalived", "--config-test"),
                             reload=reload, prove=prove, prove_name="keepalived's VRRP state",
                             rollback_reload=rollback, deadman_seconds=DEADMAN_SECONDS)


def keepalived(ctx: TaskContext) -> None:
    """Package, keepalived.conf (validated candidate, atomic, reload), enabled and running."""
    stage = ctx.stage_hosts()
    conf = site_keepalived(ctx.var(VAR), stage)
    if conf is None:
        return
    mine = conf.instances_of(ctx.name)
    if not mine:
        return
    try:
        text = render(conf, ctx.name, stage)
        own_ip = private_ip(stage, ctx.name)
    except KeepalivedError as e:
        raise StepFailed(f"{VAR}: {e} (nothing changed)") from e
    ctx.ensure([Packages(names=["keepalived"])])
    state = parse_state(ctx.run(probe_script()).stdout)
    if state.conf.exists not in ("yes", "no"):
        raise StepFailed(f"{CONF} is not a regular file ({state.conf.exists}); nothing changed")
    wrong = refusals(ctx.name, own_ip, mine, state)
    if wrong:
        raise StepFailed("keepalived refused, nothing changed: " + "; ".join(wrong))
    old = state.conf.content.decode("utf-8", "replace") if state.conf.content is not None else None
    if old != text:
        names = [i.name for i in mine]
        diff = text_diff(CONF, masked(old) if old is not None else None, masked(text))
        verb = "reload" if state.active else "start"
        if not ctx.check:
            run_transaction(ctx, transaction(ctx, text, state, names))
        ctx.changed(f"file[{CONF}]", f"{'update' if old is not None else 'create'} {CONF}: "
                                     f"{', '.join(names)} (validated with keepalived -t)", diff)
        ctx.changed(f"service[{SERVICE}]", f"{verb} {SERVICE}" if ctx.check else
                    f"{verb}ed {SERVICE}; no instance in FAULT")
    ctx.ensure([Service(name=SERVICE, enabled=True, state="started")])
