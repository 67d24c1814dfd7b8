"""strict-source-ip (firewall part): sshd reachable only from hive_ssh_source_ips, every one of them."""

from __future__ import annotations

from collections.abc import Sequence

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Primitive
from hive_nornir.tasks.net.firewall import (
    ESTABLISHED,
    SSH_OPEN,
    SSH_PORT_MARKER,
    STRICT_MARKER,
    LiveRules,
    RulesBlock,
    rules_path,
    saved,
    session_port,
    source,
    ssh_port_rule,
    ssh_ports,
    ssh_rule,
    strict_ssh_rules,
)
from hive_nornir.tasks.ssh.reach import refuse_lockouts, wanted_port, wanted_sources

MARKER = STRICT_MARKER


def ssh_sources(ctx: TaskContext) -> list[str]:
    """hive_ssh_source_ips as normalised networks (a list, or one comma separated string); [] when unset."""
    return wanted_sources(ctx)


def ssh_port(ctx: TaskContext) -> int:
    """hive_sshd_port (hive-builder's hive_safe_sshd_port), 22 by default."""
    port = wanted_port(ctx)
    return 22 if port is None else port


def strict_primitives(facts: Facts, sources: Sequence[str], port: int | Sequence[int] = 22) -> list[Primitive]:
    """One block with a rule per port and source (hive-builder kept only the last), the open ssh rules gone.

    port: every port sshd must stay reachable on (this session's and hive_sshd_port, see ssh_ports()); rules
    for 22 or an old port left over from an earlier run are deleted live, and only when not wanted.
    """
    ports = (port,) if isinstance(port, int) else tuple(port)
    rules = strict_ssh_rules(sources, ports)
    opened = (SSH_OPEN, *(ssh_port_rule(p) for p in ports if p != 22))
    old = tuple(ssh_rule(s, 22) for s in sources) if 22 not in ports else ()
    return [
        RulesBlock(path=rules_path(facts), marker=MARKER, lines=saved("INPUT", rules),
                   after=f"-A INPUT {ESTABLISHED}", remove=(f"-A INPUT {SSH_OPEN}",)),
        RulesBlock(path=rules_path(facts), marker=SSH_PORT_MARKER),  # empty: no open ssh port block stays
        LiveRules(chain="INPUT", rules=(ESTABLISHED, *rules), absent=tuple(dict.fromkeys((*opened, *old))),
                  label="ssh sources", ssh_sources=tuple(source(s) for s in sources)),
    ]


def strict_source_ip(ctx: TaskContext) -> None:
    """Runs where hive_ssh_source_ips is set; refuses when this session's address and port would not be covered."""
    sources = ssh_sources(ctx)
    if not sources:
        raise StepFailed("hive_ssh_source_ips is empty: sshd would be reachable from nowhere")
    refuse_lockouts(ctx, "strict-source-ip")
    ctx.ensure(strict_primitives(ctx.facts, sources, ssh_ports(session_port(ctx), ssh_port(ctx))))
