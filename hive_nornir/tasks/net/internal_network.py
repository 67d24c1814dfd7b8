"""internal-network: the NIC named by hive_internal_net_if gets the private IP; the internal net may reach any port.

EL: NetworkManager connection `internal_net` (like hive-builder). Debian: an ifupdown stanza in
/etc/network/interfaces.d/internal_net. Both bring the address up now when the NIC lacks it (hive-builder
rebooted instead), and the firewall ACCEPT lands in the saved rules file and live.
"""

from __future__ import annotations

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File
from hive_nornir.primitives.lines import LineInFile
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.probes import argv
from hive_nornir.primitives.service import Service
from hive_nornir.tasks.net.firewall import ICMP, LiveRules, RulesBlock, internal_rule, rules_path, saved, source

MARKER = "# {mark} ANSIBLE MANAGED BLOCK INPUT"  # hive-builder's marker, so its hosts do not get a second block
CONNECTION = "internal_net"
STANZA = "/etc/network/interfaces.d/internal_net"


def has_address(iface: str, address: str) -> str:
    """Read-only check: the NIC already carries the address (then nothing is brought up)."""
    return f"{argv('ip', '-4', '-o', 'addr', 'show', 'dev', iface)} | {argv('grep', '-qF', f' {address} ')}"


def interface_primitives(facts: Facts, iface: str, ip: str, prefix: int) -> list[Primitive]:
    """The address, persisted the family's way and brought up only when the NIC lacks it."""
    address = f"{ip}/{prefix}"
    if facts.is_redhat:
        add = (argv("nmcli", "conn", "add", "type", "ethernet", "ifname", iface, "con-name", CONNECTION) + " && "
               + argv("nmcli", "conn", "modify", CONNECTION, "ipv4.method", "manual", "ipv4.addresses", address))
        return [
            Packages(names=["NetworkManager"]),
            Service(name="NetworkManager", enabled=True, state="started"),
            Command(cmd=add, unless=argv("nmcli", "-t", "conn", "show", CONNECTION)),
            Command(args=["nmcli", "conn", "up", CONNECTION], unless=has_address(iface, address)),
        ]
    stanza = f"# hive internal network\nauto {iface}\niface {iface} inet static\n    address {address}\n"
    return [
        Packages(names=["ifupdown"]),
        LineInFile(path="/etc/network/interfaces", line="source /etc/network/interfaces.d/*"),
        File(path=STANZA, content=stanza),
        Command(args=["ifup", iface], unless=has_address(iface, address)),
    ]


def firewall_primitives(facts: Facts, iface: str, net: str) -> list[Primitive]:
    """hive-builder's ACCEPT after the icmp rule, in the saved file and live."""
    rule = internal_rule(iface, net)
    return [
        RulesBlock(path=rules_path(facts), marker=MARKER, lines=saved("INPUT", [rule]), after=f"-A INPUT {ICMP}"),
        LiveRules(chain="INPUT", rules=(ICMP, rule), label="internal network"),
    ]


def internal_network(ctx: TaskContext) -> None:
    """Runs where hive_internal_net_if is set; needs hive_private_ip, hive_internal_net_addr and _cidr."""
    iface, ip = ctx.var("hive_internal_net_if"), ctx.var("hive_private_ip")
    addr, cidr = ctx.var("hive_internal_net_addr"), ctx.var("hive_internal_net_cidr")
    if not (iface and ip and addr and cidr is not None):
        raise StepFailed("internal-network needs hive_internal_net_if, hive_private_ip, "
                         "hive_internal_net_addr and hive_internal_net_cidr")
    try:
        net = source(f"{addr}/{cidr}")
    except ValueError as exc:
        raise StepFailed(f"hive_internal_net_addr/cidr: {exc}") from exc
    ctx.ensure([*interface_primitives(ctx.facts, str(iface), str(ip), int(cidr)),
                *firewall_primitives(ctx.facts, str(iface), net)])
