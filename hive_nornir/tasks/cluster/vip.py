"""The VIP gate and the failover step: cross-host checks run once per instance, by its first host.

Both read every member of an instance with `ip -o -4 addr` (anchors.md 4.3: never ifconfig, it hides aliases)
through one session per member, so they belong in any runbook after the keepalived step: the gate proves the
VIP is on exactly one host and the others are BACKUP; the failover step stops keepalived (or the tracked service)
on the master, polls until the VIP has moved, reports the time, starts it again and checks the old master stays
BACKUP (nopreempt) while the VIP stays where it went.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping
from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import StageHost, TaskContext
from hive_nornir.primitives.probes import argv
from hive_nornir.tasks.cluster.keepalived_conf import VAR, Instance, site_keepalived
from hive_nornir.tasks.cluster.vrrp_state import Runner, states, wait_holders, wait_states

GATE_MIN_S = 10.0  # an election after a start takes about 3 advert intervals plus skew (lab.md 4: 3.6-4.2 s)


def coordinated(ctx: TaskContext, instance: str | None = None) -> list[Instance]:
    """The instances this host checks: those whose first host it is (one checker per instance)."""
    conf = site_keepalived(ctx.var(VAR), ctx.stage_hosts())
    if conf is None:
        return []
    mine = [i for i in conf.instances if i.hosts[0] == ctx.name]
    if instance is not None:
        mine = [i for i in mine if i.name == instance]
    return mine


def runners(ctx: TaskContext, hosts: tuple[str, ...], stage: Mapping[str, StageHost]) -> dict[str, Runner]:
    """A read function per member: this host through its own session, the others through session_to."""
    out: dict[str, Runner] = {}
    for host in hosts:
        session = ctx.session if host == ctx.name else ctx.session_to(stage[host])
        out[host] = (lambda s: lambda command: s.run(command, sudo=True, timeout=30))(session)
    return out


def gate_seconds(i: Instance) -> float:
    """How long the gate waits for an election."""
    return max(GATE_MIN_S, 4.0 * i.advert_int + 2.0)


def one_holder(ctx: TaskContext, i: Instance, run: dict[str, Runner]) -> tuple[str, dict[str, str]]:
    """Wait until exactly one member holds the VIPs and it is MASTER, the others BACKUP; else fail naming them."""
    found, _ = wait_holders(run, i.addresses, gate_seconds(i), lambda h: len(h) == 1)
    vrrp = {h: states(r).get(i.name, "") for h, r in run.items()}
    if len(found) != 1:
        raise StepFailed(f"{i.name}: VIP {', '.join(i.vips)} is on {len(found)} hosts "
                         f"({', '.join(found) or 'none'}) after {gate_seconds(i):.0f} s, not exactly one; "
                         f"VRRP states: {_states_text(vrrp)}")
    holder = found[0]
    wrong = [h for h, s in vrrp.items() if s != ("MASTER" if h == holder else "BACKUP")]
    if wrong:
        raise StepFailed(f"{i.name}: VIP on {holder}, but the VRRP states are {_states_text(vrrp)} "
                         "(want MASTER there and BACKUP on every other member)")
    return holder, vrrp


def _states_text(vrrp: Mapping[str, str]) -> str:
    """`host: STATE` pairs for messages."""
    return ", ".join(f"{h.split('.', 1)[0]}: {s or 'not running'}" for h, s in vrrp.items())


def keepalived_vip(ctx: TaskContext, instance: str | None = None) -> None:
    """Gate: each instance's VIP is on exactly one member, MASTER there and BACKUP elsewhere. Read-only."""
    if ctx.check:
        return  # the members may not have their config yet; the real run checks after they applied it
    stage = ctx.stage_hosts()
    report: dict[str, Any] = {}
    for i in coordinated(ctx, instance):
        holder, vrrp = one_holder(ctx, i, runners(ctx, i.hosts, stage))
        report[i.name] = {"vip": list(i.vips), "master": holder, "states": vrrp}
    if report:
        ctx.outcome.data["vip"] = report


def vip_failover(ctx: TaskContext, instance: str | None = None, service: str = "keepalived", timeout: float = 30.0,
                 observer: str | None = None) -> None:
    """Stop `service` on the master, time the VIP's move, start it again, prove the old master stays BACKUP.

    `observer`: a stage host (not a member) that pings the VIP after the move and must then see the new master's
    MAC for it. Opt-in: this really moves the VIP."""
    stage = ctx.stage_hosts()
    if observer is not None and observer not in stage:
        raise StepFailed(f"vip-failover: observer {observer} is not a host of the stage")
    results: dict[str, Any] = {}
    for i in coordinated(ctx, instance):
        if ctx.check:
            ctx.changed(f"vip-failover[{i.name}]", f"stop {service} on the master of {', '.join(i.vips)}, time the "
                                                   "move, start it again (old master must stay BACKUP)")
            continue
        results[i.name] = failover(ctx, i, service, timeout, observer, stage)
        r = results[i.name]
        ctx.changed(f"vip-failover[{i.name}]",
                    f"{', '.join(i.vips)}: {r['from'].split('.', 1)[0]} -> {r['to'].split('.', 1)[0]} in "
                    f"{r['seconds']:.2f} s; {r['from'].split('.', 1)[0]} back as BACKUP, the VIP stayed")
    if results:
        ctx.outcome.data["failover"] = results


def failover(ctx: TaskContext, i: Instance, service: str, timeout: float, observer: str | None,
             stage: Mapping[str, StageHost]) -> dict[str, Any]:
    """One failover of one instance; raises StepFailed (after starting the service again) when it does not move."""
    run = runners(ctx, i.hosts, stage)
    old, _ = one_holder(ctx, i, run)
    stop, start = argv("systemctl", "stop", service), argv("systemctl", "start", service)
    t0 = time.monotonic()
    r = run[old](stop)
    if not r.ok:
        raise StepFailed(f"{i.name}: `{stop}` on {old} failed: {(r.stderr or r.stdout).strip()}")
    found, waited = wait_holders(run, i.addresses, timeout, lambda h: len(h) == 1 and h[0] != old)
    seconds = time.monotonic() - t0 if len(found) == 1 and found[0] != old else waited
    if len(found) != 1 or found[0] == old:
        run[old](start)
        raise StepFailed(f"{i.name}: {service} stopped on {old}, but after {timeout:.0f} s the VIP is on "
                         f"{', '.join(found) or 'no host'}; {service} started again on {old}")
    new = found[0]
    seen = observe(ctx, i, new, observer, stage) if observer else {}
    r = run[old](start)
    if not r.ok:
        raise StepFailed(f"{i.name}: VIP moved to {new} in {seconds:.2f} s, but `{start}` on {old} failed: "
                         f"{(r.stderr or r.stdout).strip()}")
    back = wait_states(run[old], [i.name], timeout, lambda s: s.get(i.name) == "BACKUP").get(i.name, "")
    if back != "BACKUP":
        raise StepFailed(f"{i.name}: VIP moved to {new} in {seconds:.2f} s; {old} is {back or 'not running'} "
                         f"after {service} started again, not BACKUP")
    # nopreempt: the old master, though of higher priority, must not take the VIP back (3 adverts and a margin)
    hold = 3.0 * i.advert_int + 1.0
    still, _ = wait_holders(run, i.addresses, hold, lambda h: h != [new])
    if still != [new]:
        raise StepFailed(f"{i.name}: after {old} came back the VIP is on {', '.join(still) or 'no host'}, "
                         f"not only on {new}: preemption (nopreempt not in effect?)")
    return {"from": old, "to": new, "seconds": round(seconds, 3), "old_master_state": back, **seen}


def observe(ctx: TaskContext, i: Instance, new: str, observer: str, stage: Mapping[str, StageHost]) -> dict[str, Any]:
    """From a third host: the VIP answers a ping, and its neighbour entry is the new master's MAC."""
    session = ctx.session if observer == ctx.name else ctx.session_to(stage[observer])
    vip = i.addresses[0]
    ping = session.run(argv("ping", "-c", "1", "-W", "2", vip), sudo=True, timeout=30)
    neigh = session.run(argv("ip", "neigh", "show", vip), sudo=True, timeout=30).stdout.split()
    mac = neigh[neigh.index("lladdr") + 1] if "lladdr" in neigh else ""
    new_session = ctx.session if new == ctx.name else ctx.session_to(stage[new])
    want = new_session.run(shlex.join(["cat", f"/sys/class/net/{i.interface}/address"]), sudo=True,
                           timeout=30).stdout.strip()
    if not ping.ok:
        raise StepFailed(f"{i.name}: {observer} cannot ping {vip} after it moved to {new}: "
                         f"{(ping.stdout + ping.stderr).strip()[-200:]}")
    if mac != want:
        raise StepFailed(f"{i.name}: {observer} sees {vip} at {mac or 'no MAC'}, not at {new}'s {want}")
    return {"observer": observer, "observer_mac": mac}
