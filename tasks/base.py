"""base: the packages every server needs, its short host name, time zone and sysstat."""

from __future__ import annotations

from hive_nornir.engine.context import HostContext
from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Primitive, q
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File
from hive_nornir.primitives.filesystem import Symlink
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.service import Service

COMMON_PACKAGES = ("wget", "unzip", "sysstat", "strace", "tcpdump", "lsof", "bash-completion", "tzdata", "sudo")
FAMILY_PACKAGES = {
    "debian": ("vim-tiny", "telnet", "conntrack", "locales"),
    "redhat": ("vim-enhanced", "telnet", "conntrack-tools", "python3-libselinux", "glibc-langpack-en"),
}


def base_packages(facts: Facts) -> list[str]:
    """hive-builder's base package list, spelled the way each family names them."""
    return [*COMMON_PACKAGES, *FAMILY_PACKAGES.get(facts.os_family, ())]


def hostname_primitives(short: str) -> list[Primitive]:
    """Persist the short name and make the running kernel use it (hive-builder sets the short name)."""
    return [
        File(path="/etc/hostname", content=short + "\n"),
        Command(cmd=f"hostname {q(short)}", unless=f"test \"$(hostname)\" = {q(short)}"),
    ]


def timezone_primitives(facts: Facts, zone: str) -> list[Primitive]:
    """/etc/localtime points at the zone file; Debian also keeps the name in /etc/timezone."""
    items: list[Primitive] = [Symlink(path="/etc/localtime", target=f"/usr/share/zoneinfo/{zone}")]
    if facts.is_debian:
        items.append(File(path="/etc/timezone", content=zone + "\n"))
    return items


def base(ctx: HostContext) -> None:
    """Packages first (later primitives need tzdata and sysstat), then names and time."""
    facts = ctx.facts
    short = ctx.name.split(".")[0]
    zone = str(ctx.var("hive_timezone") or "Etc/UTC")
    ctx.ensure([
        Packages(names=base_packages(facts)),
        *hostname_primitives(short),
        *timezone_primitives(facts, zone),
        Service(name="sysstat", enabled=True, state="started"),
    ])
