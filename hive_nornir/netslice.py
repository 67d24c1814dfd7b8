"""internal_cidr slicing: the docker networks hive-builder carves out of one block (hive-builder.md §3.25).

Pure functions, no I/O: the docker, swarm, registry and zabbix tasks and build-networks all read the same table,
so a site moves between hive-builder and hive_nornir without renumbering anything.

| network                      | formula (size = addresses in internal_cidr, p = its prefix) | 172.31.252.0/22     |
|------------------------------|--------------------------------------------------------------|---------------------|
| hive_default_network overlay | network, /p+2                                                | 172.31.252.0/24     |
| ingress `apiarist-ingress`   | +size/4, /p+2, gateway +1                                    | 172.31.253.0/24 .1  |
| docker_gwbridge              | +size*4/8, /p+3                                              | 172.31.254.0/25     |
| docker0 (`--bip`)            | +size*5/8 + 1, /p+3                                          | 172.31.254.129/25   |
| registry_default             | +size*6/8, /p+3                                              | 172.31.255.0/25     |
| zabbix_default               | +size*7/8, /p+3; server +2, web +3, db +4                    | 172.31.255.128/25   |

Without internal_cidr: docker0 172.17.128.1/16, docker's own `ingress` (10.0.0.0/24), docker_gwbridge and the
default/registry networks docker-assigned (the firewall assumes 172.20.0.0/16 for the gwbridge), zabbix 172.21.0.0/16.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

DEFAULT_BIP = "172.17.128.1/16"
DEFAULT_INGRESS_NAME = "ingress"
DEFAULT_INGRESS_SUBNET = "10.0.0.0/24"
DEFAULT_GWBRIDGE_ASSUMED = "172.20.0.0/16"  # docker picks it; only the firewall rules assume this block
DEFAULT_ZABBIX_SUBNET = "172.21.0.0/16"
SLICED_INGRESS_NAME = "apiarist-ingress"
MAX_PREFIX_V4 = 29  # the /p+3 slices must still be networks
MAX_PREFIX_V6 = 125


@dataclass(frozen=True)
class InternalNets:
    """Every docker network address a stage uses; None means "docker assigns it" (no internal_cidr)."""

    internal_cidr: str | None
    hive_default_network: str | None
    ingress_name: str
    ingress_subnet: str
    ingress_gateway: str | None
    docker_gwbridge: str | None
    bip: str
    registry_default: str | None
    zabbix_default: str
    zabbix_server_ip: str | None
    zabbix_web_ip: str | None
    zabbix_db_ip: str | None

    @property
    def sliced(self) -> bool:
        """True when internal_cidr is set and the swarm must replace docker's ingress network."""
        return self.internal_cidr is not None

    @property
    def gwbridge_for_firewall(self) -> str:
        """The gwbridge block firewall rules can name: the sliced one, or the block docker usually picks."""
        return self.docker_gwbridge or DEFAULT_GWBRIDGE_ASSUMED


def parse_block(cidr: str, version: int = 4) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The block as a network (host bits ignored, like Ansible's ipaddr); refuse blocks too small to slice."""
    try:
        net = ipaddress.ip_network(str(cidr).strip(), strict=False)
    except ValueError as e:
        raise ValueError(f"internal_cidr {cidr!r} is not a network: {e}") from e
    if net.version != version:
        raise ValueError(f"internal_cidr{'_v6' if version == 6 else ''} {cidr!r} must be IPv{version}")
    limit = MAX_PREFIX_V4 if version == 4 else MAX_PREFIX_V6
    if net.prefixlen > limit:
        raise ValueError(f"internal_cidr {cidr!r} is too small: a /{net.prefixlen} cannot hold its /prefix+3 "
                         f"slices (at most /{limit})")
    return net


def _at(net: ipaddress.IPv4Network | ipaddress.IPv6Network, eighths: int, plus: int = 0) -> str:
    """The address eighths/8 of the way into the block, plus a few (hive-builder's ipaddr(size/8*k + n))."""
    return str(net.network_address + net.num_addresses // 8 * eighths + plus)


def _slice(net: ipaddress.IPv4Network | ipaddress.IPv6Network, eighths: int, extra_bits: int, plus: int = 0) -> str:
    """`address/prefix+extra_bits` at eighths/8 of the block."""
    return f"{_at(net, eighths, plus)}/{net.prefixlen + extra_bits}"


def slice_internal_cidr(internal_cidr: str | None) -> InternalNets:
    """hive-builder's table for this block, or its defaults when internal_cidr is unset."""
    if not internal_cidr:
        return InternalNets(internal_cidr=None, hive_default_network=None, ingress_name=DEFAULT_INGRESS_NAME,
                            ingress_subnet=DEFAULT_INGRESS_SUBNET, ingress_gateway=None, docker_gwbridge=None,
                            bip=DEFAULT_BIP, registry_default=None, zabbix_default=DEFAULT_ZABBIX_SUBNET,
                            zabbix_server_ip=None, zabbix_web_ip=None, zabbix_db_ip=None)
    net = parse_block(internal_cidr)
    return InternalNets(
        internal_cidr=str(net),
        hive_default_network=_slice(net, 0, 2),
        ingress_name=SLICED_INGRESS_NAME,
        ingress_subnet=_slice(net, 2, 2),
        ingress_gateway=_at(net, 2, 1),
        docker_gwbridge=_slice(net, 4, 3),
        bip=_slice(net, 5, 3, plus=1),
        registry_default=_slice(net, 6, 3),
        zabbix_default=_slice(net, 7, 3),
        zabbix_server_ip=_at(net, 7, 2),
        zabbix_web_ip=_at(net, 7, 3),
        zabbix_db_ip=_at(net, 7, 4),
    )


def gwbridge_v6(internal_cidr_v6: str | None) -> str | None:
    """docker_gwbridge's IPv6 subnet: the same 4/8, /p+3 slice of internal_cidr_v6 (None when unset)."""
    if not internal_cidr_v6:
        return None
    return _slice(parse_block(internal_cidr_v6, 6), 4, 3)
