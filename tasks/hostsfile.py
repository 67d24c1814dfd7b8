"""hostsfile: one managed block in /etc/hosts naming every server of the stage."""

from __future__ import annotations

from hive_nornir.engine.context import HostContext
from hive_nornir.primitives.lines import BlockInFile

MARKER = "# {mark} HIVE MANAGED BLOCK servers"


def hosts_block(servers: list[tuple[str, str]]) -> str:
    """`<ip> <fqdn> <short>` per server, in site order."""
    return "\n".join(f"{ip} {name} {name.split('.')[0]}" for name, ip in servers)


def hostsfile(ctx: HostContext) -> None:
    """Every server resolves every other by name, with or without DNS."""
    servers = [(name, str(host.get("hive_private_ip"))) for name, host in ctx.run_state.stage_hosts().items()
               if "servers" in host.groups]
    ctx.ensure([BlockInFile(path="/etc/hosts", block=hosts_block(servers), marker=MARKER)])
