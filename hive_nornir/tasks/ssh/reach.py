"""Our own next login: the refusals every step that uses hive_sshd_port or hive_ssh_source_ips makes first.

ssh-connection makes them from the facts (no round trip) before any step of the phase changes a host; the
iptables, strict-source-ip and sshd steps make them again for runs that select them alone (-T), each before
its own first change. Everything here is pure: site values and the session's address and port in, reasons out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.tasks.net.firewall import source

if TYPE_CHECKING:
    from hive_nornir.engine.protocols import TaskContext


def sshd_port(value: Any) -> int | None:
    """hive_sshd_port as an int (None when unset); anything else is a site error, caught before the host."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not str(value).isdigit() or not 1 <= int(value) <= 65535:
        raise ValueError(f"hive_sshd_port must be a TCP port 1-65535, not {value!r}")
    return int(value)


def source_list(value: Any) -> list[str]:
    """hive_ssh_source_ips as normalised networks (a list, or one comma separated string); [] when unset."""
    items = (value.split(",") if isinstance(value, str) else list(value)) if value else []
    try:
        return list(dict.fromkeys(source(str(v)) for v in items if str(v).strip()))
    except ValueError as exc:
        raise ValueError(f"hive_ssh_source_ips: {exc}") from exc


def port_refusal(wanted: int | None, session_port: int | None) -> str:
    """Why `Port wanted` would lock us out ('' when it would not): sshd must already receive us on that port."""
    if wanted is None:
        return ""
    if session_port is None:
        return (f"Port {wanted} wanted, but the port sshd receives our connection on is unknown "
                "($SSH_CONNECTION not found), so reachability after the change cannot be shown")
    if wanted != session_port:
        return (f"Port {wanted} wanted, but the controller reaches sshd on port {session_port}: sshd would stop "
                f"listening there (open port {wanted} and point the inventory at it first)")
    return ""


def sources_refusal(sources: Sequence[str], client: str) -> str:
    """Why strict ssh sources would lock us out ('' when the address our session comes from is one of them)."""
    if not sources:
        return ""
    try:
        addr = ipaddress.ip_address(client.strip()) if client.strip() else None
    except ValueError:
        addr = None
    if addr is None:
        return ("hive_ssh_source_ips is set, but the address this SSH session comes from is unknown "
                "($SSH_CONNECTION not found), so it cannot be shown that the next login would be accepted")
    if any(addr in ipaddress.ip_network(s, strict=False) for s in sources):
        return ""
    return (f"this SSH session comes from {client}, which hive_ssh_source_ips ({', '.join(sources)}) does not "
            "cover; the next login would be rejected (add it, or run from a covered address)")


def wanted_port(ctx: TaskContext) -> int | None:
    """hive_sshd_port of this host, validated (a bad value fails the step before the host is touched)."""
    try:
        return sshd_port(ctx.var("hive_sshd_port"))
    except ValueError as e:
        raise StepFailed(str(e)) from e


def wanted_sources(ctx: TaskContext) -> list[str]:
    """hive_ssh_source_ips of this host, validated."""
    try:
        return source_list(ctx.var("hive_ssh_source_ips"))
    except ValueError as e:
        raise StepFailed(str(e)) from e


def refuse_lockouts(ctx: TaskContext, step: str, port: bool = True, sources: bool = True) -> None:
    """Fail the step, before it changes anything, when the site's port or sources would lock us out."""
    reasons = []
    if port:
        why = port_refusal(wanted_port(ctx), ctx.facts.ssh_port)
        reasons += [f"hive_sshd_port: {why}"] if why else []
    if sources:
        why = sources_refusal(wanted_sources(ctx), ctx.facts.ssh_client)
        reasons += [f"hive_ssh_source_ips: {why}"] if why else []
    if reasons:
        raise StepFailed(f"{step} refused, nothing changed: " + "; ".join(reasons))
