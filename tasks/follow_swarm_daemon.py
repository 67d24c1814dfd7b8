"""follow-swarm-service: while a task of a swarm service runs on this node, give the node the service's virtual IPs
(labels HIVE_VIP, HIVE_VIP0..5, *_V6) and node label (HIVE_MARK); take them back when no such task runs here.

Installed by hive_nornir's follow-swarm-service step as /usr/lib/follow-swarm-service.py and run as root by systemd
(Restart=always) with the admin's ~/docker python, which sees the distribution's docker SDK. Level-triggered: at
start and on every relevant docker event it reads the whole picture and converges, so events missed while it was
down do not matter. What it added is recorded in STATE_FILE (intent first, then the change), so a restart can still
take it back. Any docker error ends the process; systemd starts it again 15 s later. Needs Python >= 3.7.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "/var/lib/follow-swarm-service/state.json"
SERVICE_ID = "com.docker.swarm.service.id"  # label docker puts on every swarm task's container
SUFFIXES = ("", "0", "1", "2", "3", "4", "5")
CONTAINER_ACTIONS = {"start", "die", "destroy"}
SERVICE_ACTIONS = {"create", "update", "remove"}
ROUTER_TRIES = 5

log = logging.getLogger("follow-swarm-service")


@dataclass(frozen=True, order=True)
class Vip:
    """A virtual address a service wants on the node running it, and the router that must learn it (optional)."""

    address: str
    router: str = ""


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
    """One change: add/del a VIP (`target` = address, `where` = ifname/prefix) or set/unset a node label."""

    kind: str  # "add-vip" | "del-vip" | "set-mark" | "unset-mark"
    target: str
    where: str = ""
    router: str = ""


def wanted_from_labels(labels: Mapping[str, str]) -> tuple[list[Vip], list[str], list[str]]:
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
                address = ipaddress.ip_address(value)
                if router:
                    ipaddress.ip_address(router)
            except ValueError as e:
                problems.append(f"{key}: {e}")
                continue
            if (address.version == 6) != (family == "_V6"):
                problems.append(f"{key}={value}: expected an IPv{6 if family else 4} address")
                continue
            vips.append(Vip(str(address), router))
    mark = str(labels.get("HIVE_MARK", "")).strip()
    return vips, [mark] if mark else [], problems


def parse_ip_json(text: str) -> list[NicAddress]:
    """`ip -j addr show` -> global-scope addresses per NIC (loopback and link-local cannot carry a VIP)."""
    out: list[NicAddress] = []
    for link in json.loads(text or "[]"):
        for a in link.get("addr_info", []):
            if a.get("family") in ("inet", "inet6") and a.get("scope") == "global" and "local" in a:
                out.append(NicAddress(str(link.get("ifname", "")), str(a["local"]), int(a["prefixlen"])))
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


def plan(vips: Iterable[Vip], marks: Iterable[str], state: State, addrs: list[NicAddress],
         node_labels: Mapping[str, str]) -> tuple[list[Action], list[str]]:
    """Wanted VIPs/marks vs what the node has and what we added -> (actions, problems). Pure: no I/O."""
    actions: list[Action] = []
    problems: list[str] = []
    wanted_vips = {v.address: v for v in sorted(set(vips))}
    wanted_marks = sorted(set(marks))
    for address, vip in wanted_vips.items():
        if holder(address, addrs) is not None:
            continue  # already here: ours (recorded) or the node's own, never touched
        nic = nic_for(address, addrs)
        if nic is None:
            problems.append(f"VIP {address}: no NIC of this node has an address in its network")
            continue
        actions.append(Action("add-vip", address, f"{nic[0]}/{nic[1]}", vip.router))
    for address in sorted(state.vips):
        if address not in wanted_vips:
            actions.append(Action("del-vip", address, state.vips[address]))
    for mark in wanted_marks:
        if node_labels.get(mark) != "true":
            actions.append(Action("set-mark", mark))
    for mark in state.marks:
        if mark not in wanted_marks:
            actions.append(Action("unset-mark", mark))
    return actions, problems


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
        if not router or sh("ping", "-c", "1", "-W", "1", "-I", address, router):
            return
        log.warning("router %s does not answer from %s (try %d of %d)", router, address, attempt, ROUTER_TRIES)
    log.error("router %s never answered from %s: giving up", router, address)


def node_addresses() -> list[NicAddress]:
    """The node's addresses now."""
    out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=30, check=True)
    return parse_ip_json(out.stdout)


class Node:
    """This node as the docker API sees it: its running swarm tasks and its labels."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def node_id(self) -> str:
        """The swarm node id ("" when the engine is not in a swarm)."""
        return str((self.api.info().get("Swarm") or {}).get("NodeID") or "")

    def wanted(self) -> tuple[list[Vip], list[str], list[str]]:
        """VIPs and marks of every service with a running task on this node."""
        vips: list[Vip] = []
        marks: list[str] = []
        problems: list[str] = []
        services = {c["Labels"][SERVICE_ID] for c in self.api.containers(filters={"label": SERVICE_ID})}
        for service_id in sorted(services):
            try:
                spec = self.api.inspect_service(service_id)["Spec"]
            except Exception as e:  # noqa: BLE001 - removed meanwhile: its container goes too
                log.info("service %s: %s", service_id, e)
                continue
            v, m, p = wanted_from_labels(spec.get("Labels") or {})
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


def apply(node: Node, node_id: str, actions: list[Action], state: State) -> None:
    """Carry out the actions, recording intent in the state file before each add and after each removal."""
    for a in actions:
        if a.kind == "add-vip":
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
        elif a.kind == "set-mark" and node_id:
            state.marks = sorted({*state.marks, a.target})
            save_state(state)
            log.info("set node label %s=true", a.target)
            node.set_label(node_id, a.target, "true")
        elif a.kind == "unset-mark":
            if node_id:
                log.info("remove node label %s", a.target)
                node.set_label(node_id, a.target, None)
            state.marks = [m for m in state.marks if m != a.target]
            save_state(state)


def reconcile(node: Node) -> None:
    """Read everything, plan, apply: the one code path for start-up and for every event."""
    state = load_state()
    node_id = node.node_id()
    vips, marks, problems = node.wanted()
    actions, more = plan(vips, marks, state, node_addresses(), node.labels(node_id))
    for p in problems + more:
        log.error("%s", p)
    apply(node, node_id, actions, state)


def relevant(event: Mapping[str, Any]) -> bool:
    """Swarm task containers starting or stopping here, and service changes (labels may have changed)."""
    kind, action = event.get("Type"), str(event.get("Action", ""))
    if kind == "service":
        return action in SERVICE_ACTIONS
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    return kind == "container" and action in CONTAINER_ACTIONS and SERVICE_ID in attributes


def main() -> int:
    """Subscribe first (nothing is missed), converge once, then converge on every relevant event."""
    import docker  # the distribution's SDK, visible in ~/docker; imported here so the pure logic needs none

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    api = docker.APIClient(base_url="unix:///var/run/docker.sock", timeout=60)
    node = Node(api)
    events = api.events(decode=True, filters={"type": ["container", "service"]})
    reconcile(node)
    for event in events:
        if relevant(event):
            reconcile(node)
    log.error("docker event stream ended (docker restarted?); exiting so systemd starts a fresh watch")
    return 1


if __name__ == "__main__":
    sys.exit(main())
