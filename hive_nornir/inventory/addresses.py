"""hive-builder's address allocation: cidr (skip 3), subnets round-robin (skip 4), or an explicit list."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from ..site import Stage

_DEFAULT_AZ_SUFFIXES: tuple[str, ...] = ("-a", "-b", "-c")


@dataclass(frozen=True)
class Placement:
    """Where one server sits: its address, netmask, subnet name and availability zone."""

    ip: str
    netmask: str
    subnet: str
    available_zone: str | int | None


def _skip(net: ipaddress.IPv4Network | ipaddress.IPv6Network, count: int) -> Iterator[str]:
    hosts = net.hosts()
    for _ in range(count):
        next(hosts, None)
    return (str(h) for h in hosts)


def _zone(stage: Stage, idx: int, subnet_zone: str | int | None) -> str | int | None:
    """hive-builder sets a zone only when the stage has a region; a subnet's own zone wins then."""
    if stage.region is None:
        return None
    if subnet_zone is not None:
        return subnet_zone
    if stage.provider == "azure":
        return (idx % 3) + 1
    suffixes = stage.get("az_suffix_list") or list(_DEFAULT_AZ_SUFFIXES)
    return stage.region + suffixes[idx % len(suffixes)]


def allocate(stage: Stage, site_name: str) -> list[Placement]:
    """One Placement per server index, exactly as hive-builder's inventory plugin assigns them."""
    count = stage.number_of_hosts
    if stage.subnets:
        nets = [ipaddress.ip_network(s.cidr) for s in stage.subnets]
        pools = [_skip(net, 4) for net in nets]
        out = []
        for idx in range(count):
            pick = idx % len(nets)
            sub = stage.subnets[pick]
            out.append(Placement(next(pools[pick]), str(nets[pick].netmask), sub.name,
                                 _zone(stage, idx, sub.available_zone)))
        return out
    net = ipaddress.ip_network(stage.cidr)
    ips = iter(stage.ip_address_list) if stage.ip_address_list else _skip(net, 3)
    name = f"{site_name}-default"
    return [Placement(next(ips), str(net.netmask), name, _zone(stage, idx, None)) for idx in range(count)]
