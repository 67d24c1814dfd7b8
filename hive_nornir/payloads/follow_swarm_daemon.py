"""follow-swarm-service: while a task of a swarm service runs on this node, give the node the service's virtual IPs
(labels HIVE_VIP, HIVE_VIP0..5, *_V6), their NAT rules (HIVE_DNAT_PORTS*, HIVE_ENABLE_VIP_SNAT*; IPv4) and a node
label (HIVE_MARK); take them back when no such task runs here.

Installed by hive_nornir's follow-swarm-service step as /usr/lib/follow-swarm-service.py and run as root by systemd
(Restart=always) with the admin's ~/docker python, which sees the distribution's docker SDK. Level-triggered: at
start and on every relevant docker event it reads the whole picture and converges, so events missed while it was
down do not matter. VIPs and labels it added are recorded in STATE_FILE (intent first, then the change); its NAT
rules carry the comment `hive-follow:<vip>`, which is their record. When docker goes away no task can run here:
the VIPs and NAT rules go, the process ends and systemd starts it again 15 s later. Stopped while the machine
shuts down, it takes everything back (hive-builder's node-down); any other stop keeps it. Needs Python >= 3.7.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "/var/lib/follow-swarm-service/state.json"
SERVICE_ID = "com.docker.swarm.service.id"  # label docker puts on every swarm task's container
GWBRIDGE = "docker_gwbridge"  # where a swarm task's container meets the node (overlay networks, published ports)
COMMENT = "hive-follow:"  # prefix of the comment on every NAT rule this daemon makes
NAT_CHAINS = (("nat", "DOCKER"), ("filter", "DOCKER"), ("nat", "POSTROUTING"))
SUFFIXES = ("", "0", "1", "2", "3", "4", "5")
CONTAINER_ACTIONS = {"start", "die", "destroy"}
SERVICE_ACTIONS = {"create", "update", "remove"}
ROUTER_TRIES = 5
PORT = re.compile(r"^([1-9][0-9]{0,4})(?:/(tcp|udp))?$")

log = logging.getLogger("follow-swarm-service")


@dataclass(frozen=True, order=True)
class Vip:
    """A virtual address a service wants on the node running its task, with what goes with it."""

    address: str
    router: str = ""  # ping it after the gratuitous ARP (HIVE_ROUTER*)
    nic: str = ""  # "ifname/prefix" when the label names it ("addr/prefix@ifname"); else found by network
    ports: tuple[str, ...] = ()  # "tcp/80": DNAT VIP:port to the task's container (HIVE_DNAT_PORTS*)
    snat: bool = False  # the container's outgoing traffic leaves from the VIP (HIVE_ENABLE_VIP_SNAT*)
    container_ip: str = ""  # the task container's docker_gwbridge address (needed for NAT only)


@dataclass(frozen=True)
class NicAddress:
    """One address the node has: `ip -j addr` reduced to what NIC selection needs."""

    ifname: str
    address: str
    prefixlen: int


@dataclass
class State:
    """What this daemon added: VIP -> "ifname/prefix", and node labels it set (only those are taken back)."""

    vips: dict[str, str] = field(default_factory=dict)
    marks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Action:
    """One change. add/del-vip: target = address, where = ifname/prefix; set/unset-mark: target = label;
    add/del-rule: target = "table chain", where = the rule's arguments as `iptables -S` prints them."""

    kind: str
    target: str
    where: str = ""
    router: str = ""


# -- labels -> what the node should have (pure) ----------------------------------------------------------------

def parse_ports(value: str) -> tuple[tuple[str, ...], list[str]]:
    """HIVE_DNAT_PORTS "80,443/tcp,53/udp" -> ("tcp/80", "tcp/443", "udp/53") and problems."""
    ports: list[str] = []
    problems: list[str] = []
    for item in (p.strip() for p in value.split(",")):
        m = PORT.match(item)
        if not item:
            continue
        if m is None or int(m.group(1)) > 65535:
            problems.append(f"port {item!r} is not PORT or PORT/tcp|udp")
            continue
        ports.append(f"{m.group(2) or 'tcp'}/{m.group(1)}")
    return tuple(ports), problems


def parse_vip(value: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, str]:
    """"10.0.0.5" or "10.0.0.5/24@eth1" (an explicit NIC and prefix) -> (address, "ifname/prefix" or "")."""
    if "@" in value:
        spec, ifname = (s.strip() for s in value.split("@", 1))
        iface = ipaddress.ip_interface(spec)
        if "/" not in spec or not ifname:
            raise ValueError(f"{value!r}: the NIC form is ADDRESS/PREFIX@IFNAME")
        return iface.ip, f"{ifname}/{iface.network.prefixlen}"
    return ipaddress.ip_address(value), ""


def wanted_from_labels(labels: Mapping[str, str], container_ip: str = "") -> tuple[list[Vip], list[str], list[str]]:
    """Service labels -> (VIPs, node labels to set, problems). HIVE_VIP{n}_V6 must be IPv6, the others IPv4."""
    vips: list[Vip] = []
    problems: list[str] = []
    for suffix in SUFFIXES:
        for family in ("", "_V6"):
            key = f"HIVE_VIP{suffix}{family}"
            value = str(labels.get(key, "")).strip()
            if not value:
                continue
            router = str(labels.get(f"HIVE_ROUTER{suffix}{family}", "")).strip()
            try:
                address, nic = parse_vip(value)
                if router:
                    ipaddress.ip_address(router)
            except ValueError as e:
                problems.append(f"{key}: {e}")
                continue
            if (address.version == 6) != (family == "_V6"):
                problems.append(f"{key}={value}: expected an IPv{6 if family else 4} address")
                continue
            ports, bad = parse_ports(str(labels.get(f"HIVE_DNAT_PORTS{suffix}{family}", "")))
            problems += [f"HIVE_DNAT_PORTS{suffix}{family}: {b}" for b in bad]
            snat = str(labels.get(f"HIVE_ENABLE_VIP_SNAT{suffix}{family}", "")).strip().lower() == "true"
            if (ports or snat) and address.version == 6:
                problems.append(f"{key}: NAT for IPv6 VIPs is not supported; the address alone is set")
                ports, snat = (), False
            if (ports or snat) and not container_ip:
                problems.append(f"{key}: NAT needs the task on an overlay network ({GWBRIDGE}); "
                                "the address alone is set")
                ports, snat = (), False
            vips.append(Vip(str(address), router, nic, ports, snat, container_ip if ports or snat else ""))
    mark = str(labels.get("HIVE_MARK", "")).strip()
    return vips, [mark] if mark else [], problems


# -- the node now (pure parsers) ---------------------------------------------------------------------------------

def parse_ip_json(text: str) -> list[NicAddress]:
    """`ip -j addr show` -> global-scope addresses per NIC (loopback and link-local cannot carry a VIP)."""
    out: list[NicAddress] = []
    for link in json.loads(text or "[]"):
        for a in link.get("addr_info", []):
            if a.get("family") in ("inet", "inet6") and a.get("scope") == "global" and "local" in a:
                out.append(NicAddress(str(link.get("ifname", "")), str(a["local"]), int(a["prefixlen"])))
    return out


def parse_rules(table: str, chain: str, text: str) -> set[tuple[str, str]]:
    """`iptables -t TABLE -S CHAIN` -> our rules as ("table chain", arguments)."""
    out: set[tuple[str, str]] = set()
    for line in text.splitlines():
        words = shlex.split(line)
        if words[:2] != ["-A", chain] or "--comment" not in words:
            continue
        if words[words.index("--comment") + 1].startswith(COMMENT):
            out.add((f"{table} {chain}", " ".join(words[2:])))  # our rules need no quoting
    return out


def holder(address: str, addrs: Iterable[NicAddress]) -> NicAddress | None:
    """The NIC address entry that is this address, if the node has it."""
    want = ipaddress.ip_address(address)
    return next((a for a in addrs if ipaddress.ip_address(a.address) == want), None)


def nic_for(address: str, addrs: Iterable[NicAddress]) -> tuple[str, int] | None:
    """(ifname, prefixlen) of the NIC whose network contains the address; the most specific network wins."""
    want = ipaddress.ip_address(address)
    best: tuple[str, int] | None = None
    for a in addrs:
        if ipaddress.ip_address(a.address) == want:
            continue
        net = ipaddress.ip_interface(f"{a.address}/{a.prefixlen}").network
        if want.version == net.version and want in net and (best is None or a.prefixlen > best[1]):
            best = (a.ifname, a.prefixlen)
    return best


# -- what to change (pure) -----------------------------------------------------------------------------------------

def nat_rules(vip: Vip, ifname: str) -> set[tuple[str, str]]:
    """hive-builder's rules, written as `iptables -S` prints them: DNAT VIP:port to the container and ACCEPT it
    into docker_gwbridge; SNAT the container's traffic leaving by the VIP's NIC to the VIP."""
    if not vip.container_ip:
        return set()
    tag = f"-m comment --comment {COMMENT}{vip.address}"
    rules: set[tuple[str, str]] = set()
    for item in vip.ports:
        proto, port = item.split("/")
        rules.add(("nat DOCKER", f"-d {vip.address}/32 -p {proto} -m {proto} --dport {port} {tag} "
                                 f"-j DNAT --to-destination {vip.container_ip}:{port}"))
        rules.add(("filter DOCKER", f"-d {vip.container_ip}/32 ! -i {GWBRIDGE} -o {GWBRIDGE} -p {proto} "
                                    f"-m {proto} --dport {port} {tag} -j ACCEPT"))
    if vip.snat:
        rules.add(("nat POSTROUTING", f"-s {vip.container_ip}/32 -o {ifname} {tag} -j SNAT --to-source {vip.address}"))
    return rules


def plan(vips: Iterable[Vip], marks: Iterable[str], state: State, addrs: list[NicAddress],
         node_labels: Mapping[str, str], rules: Iterable[tuple[str, str]] = ()) -> tuple[list[Action], list[str]]:
    """Wanted VIPs/marks/rules vs what the node has and what we added -> (actions, problems). Pure: no I/O.

    Order: stale rules go first, then VIPs and labels, new rules last (a rule never names a VIP the node lacks)."""
    vip_actions: list[Action] = []
    problems: list[str] = []
    wanted_rules: set[tuple[str, str]] = set()
    wanted_vips = {v.address: v for v in sorted(set(vips))}
    wanted_marks = sorted(set(marks))
    for address, vip in wanted_vips.items():
        have = holder(address, addrs)
        if have is not None:  # already here: ours (recorded) or the node's own, never touched
            wanted_rules |= nat_rules(vip, have.ifname)
            continue
        nic = vip.nic or "/".join(map(str, nic_for(address, addrs) or ()))
        if not nic:
            problems.append(f"VIP {address}: no NIC of this node has an address in its network")
            continue
        vip_actions.append(Action("add-vip", address, nic, vip.router))
        wanted_rules |= nat_rules(vip, nic.split("/")[0])
    for address in sorted(state.vips):
        if address not in wanted_vips:
            vip_actions.append(Action("del-vip", address, state.vips[address]))
    for mark in wanted_marks:
        if node_labels.get(mark) != "true":
            vip_actions.append(Action("set-mark", mark))
    for mark in state.marks:
        if mark not in wanted_marks:
            vip_actions.append(Action("unset-mark", mark))
    current = set(rules)
    stale = [Action("del-rule", t, r) for t, r in sorted(current - wanted_rules)]
    new = [Action("add-rule", t, r) for t, r in sorted(wanted_rules - current)]
    return stale + vip_actions + new, problems


# -- doing it ------------------------------------------------------------------------------------------------------

def load_state(path: str = STATE_FILE) -> State:
    """The record of what we added; empty when there is none (first start) or it is unreadable."""
    try:
        with open(path) as f:
            data = json.load(f)
        return State(vips=dict(data.get("vips", {})), marks=list(data.get("marks", [])))
    except (OSError, ValueError, AttributeError):
        return State()


def save_state(state: State, path: str = STATE_FILE) -> None:
    """Write the record atomically (a crash leaves the old or the new one, never half)."""
    target = Path(path)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps({"vips": state.vips, "marks": sorted(set(state.marks))}))
    tmp.replace(target)


def sh(*argv: str) -> bool:
    """Run a tool (no shell); log its complaint and say whether it worked."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        log.warning("%s: rc %s %s", " ".join(argv), done.returncode, (done.stderr or done.stdout).strip())
    return done.returncode == 0


def announce(address: str, ifname: str, router: str) -> None:
    """Gratuitous ARP (IPv6: the kernel's DAD announces); with a router, ping it and re-announce until it answers."""
    for attempt in range(1, ROUTER_TRIES + 1):
        if ipaddress.ip_address(address).version == 4:
            sh("arping", "-q", "-U", "-c", "2", "-I", ifname, address)
        if not router or sh("ping", "-c", "1", "-W", "2", "-I", address, router):
            return
        log.warning("router %s does not answer from %s (try %d of %d)", router, address, attempt, ROUTER_TRIES)
        time.sleep(2)
    log.error("router %s never answered from %s: giving up (the VIP stays)", router, address)


def node_addresses() -> list[NicAddress]:
    """The node's addresses now."""
    out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=30, check=True)
    return parse_ip_json(out.stdout)


def our_rules() -> set[tuple[str, str]]:
    """Our NAT rules now (a chain docker has not made yet simply has none)."""
    rules: set[tuple[str, str]] = set()
    for table, chain in NAT_CHAINS:
        out = subprocess.run(["iptables", "-w", "-t", table, "-S", chain], capture_output=True, text=True,
                             timeout=30, check=False)
        rules |= parse_rules(table, chain, out.stdout)
    return rules


class Node:
    """This node as the docker API sees it: its running swarm tasks and its labels."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def node_id(self) -> str:
        """The swarm node id ("" when the engine is not in a swarm)."""
        return str((self.api.info().get("Swarm") or {}).get("NodeID") or "")

    def gwbridge_ips(self) -> dict[str, str]:
        """Container id -> its docker_gwbridge IPv4 address (no network yet: none)."""
        try:
            containers = self.api.inspect_network(GWBRIDGE).get("Containers") or {}
        except Exception as e:  # noqa: BLE001 - not in a swarm yet: no gwbridge, no NAT
            log.info("%s: %s", GWBRIDGE, e)
            return {}
        return {cid: str(c.get("IPv4Address", "")).split("/")[0] for cid, c in containers.items()}

    def wanted(self) -> tuple[list[Vip], list[str], list[str]]:
        """VIPs and marks of every service with a running task on this node."""
        vips: list[Vip] = []
        marks: list[str] = []
        problems: list[str] = []
        tasks = self.api.containers(filters={"label": SERVICE_ID})
        gw = self.gwbridge_ips() if tasks else {}
        for c in sorted(tasks, key=lambda c: c["Id"]):
            service_id = c["Labels"][SERVICE_ID]
            try:
                spec = self.api.inspect_service(service_id)["Spec"]
            except Exception as e:  # noqa: BLE001 - removed meanwhile: its container goes too
                log.info("service %s: %s", service_id, e)
                continue
            v, m, p = wanted_from_labels(spec.get("Labels") or {}, gw.get(c["Id"], ""))
            vips += v
            marks += m
            problems += [f"service {spec.get('Name', service_id)}: {x}" for x in p]
        return vips, marks, problems

    def labels(self, node_id: str) -> dict[str, str]:
        """The node's labels now."""
        if not node_id:
            return {}
        return dict(self.api.inspect_node(node_id)["Spec"].get("Labels") or {})

    def set_label(self, node_id: str, key: str, value: str | None) -> None:
        """Add (value) or remove (None) one node label; retried when another update got in between."""
        for attempt in range(5):
            node = self.api.inspect_node(node_id)
            spec = node["Spec"]
            labels = dict(spec.get("Labels") or {})
            if value is None:
                labels.pop(key, None)
            else:
                labels[key] = value
            spec["Labels"] = labels
            try:
                self.api.update_node(node_id, node["Version"]["Index"], spec)
                return
            except Exception as e:  # "update out of sequence": read again and retry
                if attempt == 4:
                    raise
                log.info("node update raced (%s); retrying", e)


def apply(node: Node | None, node_id: str, actions: list[Action], state: State) -> None:
    """Carry out the actions, recording intent in the state file before each add and after each removal."""
    for a in actions:
        if a.kind in ("add-rule", "del-rule"):
            table, chain = a.target.split()
            log.info("%s %s %s: %s", "insert" if a.kind == "add-rule" else "delete", table, chain, a.where)
            sh("iptables", "-w", "-t", table, "-I" if a.kind == "add-rule" else "-D", chain, *shlex.split(a.where))
        elif a.kind == "add-vip":
            ifname, prefix = a.where.split("/")
            state.vips[a.target] = a.where
            save_state(state)
            log.info("add VIP %s/%s on %s", a.target, prefix, ifname)
            if sh("ip", "addr", "add", f"{a.target}/{prefix}", "dev", ifname):
                announce(a.target, ifname, a.router)
        elif a.kind == "del-vip":
            found = holder(a.target, node_addresses())
            if found is not None:
                log.info("remove VIP %s from %s", a.target, found.ifname)
                sh("ip", "addr", "del", f"{found.address}/{found.prefixlen}", "dev", found.ifname)
            state.vips.pop(a.target, None)
            save_state(state)
        elif a.kind == "set-mark" and node is not None and node_id:
            state.marks = sorted({*state.marks, a.target})
            save_state(state)
            log.info("set node label %s=true", a.target)
            node.set_label(node_id, a.target, "true")
        elif a.kind == "unset-mark" and node is not None and node_id:
            log.info("remove node label %s", a.target)
            node.set_label(node_id, a.target, None)
            state.marks = [m for m in state.marks if m != a.target]
            save_state(state)


def reconcile(node: Node) -> None:
    """Read everything, plan, apply: the one code path for start-up and for every event."""
    state = load_state()
    node_id = node.node_id()
    vips, marks, problems = node.wanted()
    actions, more = plan(vips, marks, state, node_addresses(), node.labels(node_id), our_rules())
    for p in problems + more:
        log.error("%s", p)
    apply(node, node_id, actions, state)


def release() -> None:
    """Docker is gone, so no task runs here: drop our VIPs and NAT rules (labels need docker; they wait)."""
    state = load_state()
    actions, _ = plan([], state.marks, state, [], {}, our_rules())
    apply(None, "", [a for a in actions if a.kind in ("del-rule", "del-vip")], state)


def relevant(event: Mapping[str, Any]) -> bool:
    """Swarm task containers starting or stopping here, and service changes (labels may have changed)."""
    kind, action = event.get("Type"), str(event.get("Action", ""))
    if kind == "service":
        return action in SERVICE_ACTIONS
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    return kind == "container" and action in CONTAINER_ACTIONS and SERVICE_ID in attributes


def follow(api: Any) -> None:
    """Subscribe first (nothing is missed), converge once, then converge on every relevant event."""
    node = Node(api)
    events = api.events(decode=True, filters={"type": ["container", "service"]})
    reconcile(node)
    log.info("following docker events")
    for event in events:
        if relevant(event):
            reconcile(node)


def leaving(system_state: str) -> bool:
    """SIGTERM while systemd takes the machine down: the node leaves, so do its VIPs, rules and labels. Any other
    stop (a restart after an update) keeps them: a VIP must not blink because the daemon was replaced."""
    return system_state.strip() == "stopping"


def leave(api: Any) -> None:
    """Take back everything: our unit stops before docker's, so docker still answers for the labels."""
    node = Node(api)
    state, node_id = load_state(), node.node_id()
    actions, _ = plan([], [], state, [], node.labels(node_id), our_rules())
    apply(node, node_id, actions, state)


def system_state() -> str:
    """`systemctl is-system-running` ("running", "stopping", ...); asked again if the answer got lost."""
    out = ""
    for _ in range(3):
        out = subprocess.run(["systemctl", "is-system-running"], capture_output=True, text=True, timeout=10,
                             check=False).stdout
        if out.strip():
            break
    return out


def on_sigterm(_signum: int, _frame: Any) -> None:
    """Turn systemd's stop into an exception the main loop can act on."""
    raise SystemExit(0)


def main() -> int:
    """Follow until docker goes away; then release what only a running task justifies and exit for a restart."""
    signal.signal(signal.SIGTERM, on_sigterm)
    import docker  # the distribution's SDK, visible in ~/docker; imported here so the pure logic needs none
    import requests

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    api = None
    try:
        api = docker.APIClient(base_url="unix:///var/run/docker.sock", timeout=60)
        follow(api)
        log.error("docker's event stream ended")
    except SystemExit:
        system = system_state()
        log.info("stopped; the machine is %s", system.strip() or "in an unknown state")
        if api is not None and leaving(system):
            log.info("the machine is going down: taking back VIPs, NAT rules and node labels")
            leave(api)
        return 0
    except docker.errors.APIError as e:  # docker answers but refuses (e.g. a swarm election): keep everything
        log.error("docker API: %s", e)
        return 1
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        log.error("docker unreachable: %s", e)
    release()
    log.error("exiting; systemd starts a fresh watch")
    return 1


if __name__ == "__main__":
    sys.exit(main())
