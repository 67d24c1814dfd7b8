"""hostsfile: one managed block at the top of /etc/hosts naming every server of the stage."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.primitives.lines import BlockInFile

MARKER = "# {mark} HIVE MANAGED BLOCK servers"


def hosts_block(servers: list[tuple[str, str]]) -> str:
    """`<ip> <fqdn> <short>` per server, in site order."""
    return "\n".join(f"{ip} {name} {name.split('.')[0]}" for name, ip in servers)


def server_addresses(hosts: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, hive_private_ip) of every server; a server without a valid address stops the step.

    Failing beats skipping: a server left out would resolve through whatever else names it (DNS, or Debian's
    `127.0.1.1 <fqdn>` line on that server itself), which breaks swarm and DRBD far from the cause.
    """
    servers, bad = [], []
    for name, host in hosts.items():
        if "servers" not in host.groups:
            continue
        ip = host.get("hive_private_ip")
        try:
            servers.append((name, str(ipaddress.ip_address(str(ip).strip()))))
        except ValueError:
            bad.append(f"{name} ({ip!r})")
    if bad:
        raise StepFailed("no usable hive_private_ip for " + ", ".join(bad) + ": /etc/hosts would name it wrongly; "
                         "set hive_private_ip in its host_vars")
    return servers


def hosts_primitive(servers: list[tuple[str, str]]) -> BlockInFile:
    """The block goes at the top like hive-builder's (insertbefore BOF): the first line naming a host wins, and
    Debian cloud images name the host itself `127.0.1.1 <fqdn> <short>` early in the file."""
    return BlockInFile(path="/etc/hosts", block=hosts_block(servers), marker=MARKER, insertbefore="BOF")


def hostsfile(ctx: TaskContext) -> None:
    """Every server resolves every other (and itself) to its private IP, with or without DNS."""
    ctx.ensure([hosts_primitive(server_addresses(ctx.stage_hosts()))])
