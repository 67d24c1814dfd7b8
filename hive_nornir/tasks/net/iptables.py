"""iptables: the saved rules file with the HIVE-SERVICE chain, loaded at boot, and the same rules live now."""

from __future__ import annotations

from collections.abc import Sequence

from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.service import Service
from hive_nornir.tasks.net.firewall import (
    ESTABLISHED,
    GWBRIDGE,
    HIVE_CHAIN,
    HIVE_MARKER,
    JUMP_HIVE,
    REJECT,
    SSH_OPEN,
    SSH_PORT_MARKER,
    STRICT_MARKER,
    LiveRules,
    RulesBlock,
    base_rules,
    input_rules,
    rules_path,
    saved,
    session_port,
    ssh_port_lines,
    ssh_ports,
)
from hive_nornir.tasks.ssh.reach import refuse_lockouts
from hive_nornir.tasks.ssh.strict_source_ip import ssh_port, ssh_sources

# iptables-persistent's postinst would otherwise save the current (empty) table as rules.v4, and the
# base ruleset would never be written.
PRESEED = ("iptables-persistent iptables-persistent/autosave_v4 boolean false\n"
           "iptables-persistent iptables-persistent/autosave_v6 boolean false\n")
PRESEED_CMD = f"printf '{PRESEED.replace(chr(10), chr(92) + 'n')}' | debconf-set-selections"
INSTALLED = "dpkg-query -W -f '${Status}' iptables-persistent 2>/dev/null | grep -q 'ok installed'"


def persistence(facts: Facts) -> list[Primitive]:
    """Packages and the boot-time service that restores the saved file (installing them loads nothing)."""
    if facts.is_redhat:
        return [Packages(names=["iptables-services"]), Packages(names=["firewalld"], state="absent")]
    return [Command(cmd=PRESEED_CMD, unless=INSTALLED), Packages(names=["iptables", "iptables-persistent"])]


def boot_service(facts: Facts) -> Service:
    """Enabled only: starting it now would flush and restore the whole table (dockerd's chains, our session)."""
    return Service(name="iptables" if facts.is_redhat else "netfilter-persistent", enabled=True)


def hive_block(facts: Facts) -> RulesBlock:
    """hive-builder's HIVE-SERVICE block after the established ACCEPT; a missing file starts as EL's stock one."""
    lines = (f"-N {HIVE_CHAIN}", *saved("INPUT", [GWBRIDGE, JUMP_HIVE]))
    return RulesBlock(path=rules_path(facts), marker=HIVE_MARKER, lines=lines, after=f"-A INPUT {ESTABLISHED}",
                      base=base_rules(facts))


def ssh_port_block(facts: Facts, strict: Sequence[str] = (), port: int | Sequence[int] = 22) -> RulesBlock:
    """ssh ports other than 22 without strict sources: open them in the saved file too (else: no block).

    Without strict sources the open port-22 rule must be in the file: a file an earlier strict-source-ip run
    (or a hand edit) left without it gets it back here, so removing hive_ssh_source_ips repairs the file."""
    ports = (port,) if isinstance(port, int) else tuple(port)
    restore = (f"-A INPUT {SSH_OPEN}",) if not strict and 22 in ports else ()
    return RulesBlock(path=rules_path(facts), marker=SSH_PORT_MARKER, lines=ssh_port_lines(strict, port),
                      after=f"-A INPUT {ESTABLISHED}", restore=restore, base=base_rules(facts))


def strict_cleanup(facts: Facts, strict: Sequence[str] = ()) -> list[Primitive]:
    """Without strict sources, no strict block stays in the saved file (the sources were removed)."""
    return [] if strict else [RulesBlock(path=rules_path(facts), marker=STRICT_MARKER)]


def live_rules(strict: Sequence[str] = (), port: int | Sequence[int] = 22) -> list[Primitive]:
    """The chain, then INPUT and FORWARD as the file has them, inserted one by one (never a restore)."""
    return [
        LiveRules(chain=HIVE_CHAIN, create_chain=True, label="chain"),
        LiveRules(chain="INPUT", rules=input_rules(strict, port), label="hive base", ssh_sources=tuple(strict)),
        LiveRules(chain="FORWARD", rules=(REJECT,), label="hive base"),
    ]


def iptables_primitives(facts: Facts, strict: Sequence[str] = (), port: int | Sequence[int] = 22) -> list[Primitive]:
    """Everything the iptables step ensures, in order; strict sources replace the open ssh rule live.

    port: every port ssh must stay open on, i.e. this session's and hive_sshd_port (see ssh_ports()).
    The ssh port block comes first: every saved-file candidate must admit this session's port (a new file
    starts as the stock rules, which open 22 only).
    """
    return [*persistence(facts), ssh_port_block(facts, strict, port), hive_block(facts), *strict_cleanup(facts, strict),
            boot_service(facts), *live_rules(strict, port)]


def iptables(ctx: TaskContext) -> None:
    """Runs on every server, like hive-builder's iptables role (before the roles that add rule sets)."""
    refuse_lockouts(ctx, "iptables")
    ports = ssh_ports(session_port(ctx), ssh_port(ctx))
    ctx.ensure(iptables_primitives(ctx.facts, ssh_sources(ctx), ports))
