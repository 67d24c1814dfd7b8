"""keepalived.conf from site data: VRRP instances with unicast peers, all BACKUP + nopreempt (anchors.md 5.1).

Pure: the site's `hive_keepalived` and the stage's hosts in, one host's keepalived.conf text out, so the exact text
is unit-tested and every host of an instance is rendered from the same data.

```yaml
hive_keepalived:
  script_user: root                 # runs track and notify scripts (enable_script_security is always on)
  scripts:                          # vrrp_script blocks, named by track_script
    chk_haproxy: {script: /usr/bin/pgrep -x haproxy, interval: 2, fall: 2, rise: 2, weight: -20}
  instances:
    VI_HIVE:
      interface: eth0
      virtual_router_id: 51
      virtual_ipaddress: [10.0.0.100/24]
      hosts: [p-hive0.site, p-hive1.site]  # default: every stage host whose hive_keepalived has this instance
      priority: 150                 # of the first host; each next host 10 less (default 150)
      advert_int: 1
      auth_pass: secret8            # optional, VRRPv2 PASS (8 characters at most)
      track_interface: [eth1]
      track_script: [chk_haproxy]
      notify_master: /usr/local/sbin/vip-master   # also notify_backup, notify_fault, notify_stop, notify
      options: {garp_master_delay: 1}             # more vrrp_instance keywords, one `key value` line each
```
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import StageHost

VAR = "hive_keepalived"
CONF = "/etc/keepalived/keepalived.conf"
DEFAULT_PRIORITY = 150
PRIORITY_STEP = 10
NOTIFY_KEYS = ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")
INSTANCE_NAME = r"[A-Za-z0-9_.-]{1,32}"
WORD = r"[A-Za-z0-9_.:/@+-]+"  # an interface, a script name, an option value: nothing keepalived would split
SCRIPT = r"/[^\"\n\r{}#!]*"  # an absolute command line; no quote, brace, comment or line break can escape it
HEADER = "# managed by hive_nornir (tasks/cluster/keepalived): every change here is overwritten\n"


class KeepalivedError(ValueError):
    """The site's hive_keepalived cannot be rendered (a host without an address, a peer that is not a host)."""


@dataclass(frozen=True)
class VrrpScript:
    """A vrrp_script block: the check command and how its result moves the priority."""

    name: str
    script: str
    interval: int = 2
    fall: int = 2
    rise: int = 2
    weight: int | None = None
    timeout: int | None = None


@dataclass(frozen=True)
class Instance:
    """One VRRP instance as every member sees it: the members in priority order."""

    name: str
    interface: str
    virtual_router_id: int
    vips: tuple[str, ...]
    hosts: tuple[str, ...]
    priority: int = DEFAULT_PRIORITY
    advert_int: int = 1
    auth_pass: str | None = None
    track_interface: tuple[str, ...] = ()
    track_script: tuple[str, ...] = ()
    notify: dict[str, str] = field(default_factory=dict)
    options: tuple[tuple[str, str], ...] = ()

    def priority_of(self, host: str) -> int:
        """The first host has `priority`, each next one PRIORITY_STEP less (never below 1)."""
        return max(1, self.priority - PRIORITY_STEP * self.hosts.index(host))

    @property
    def addresses(self) -> tuple[str, ...]:
        """The VIPs without their prefix length, as `ip -o addr` prints them before the slash."""
        return tuple(v.split("/", 1)[0] for v in self.vips)


@dataclass(frozen=True)
class Keepalived:
    """Everything keepalived.conf is made of, for the whole stage."""

    instances: tuple[Instance, ...]
    scripts: tuple[VrrpScript, ...] = ()
    script_user: str = "root"

    def instances_of(self, host: str) -> list[Instance]:
        """The instances a host takes part in."""
        return [i for i in self.instances if host in i.hosts]


def _words(value: Any, key: str, pattern: str = WORD) -> tuple[str, ...]:
    """A list of plain words (interfaces, script names)."""
    items = list(value or [])
    for item in items:
        if not isinstance(item, str) or not re.fullmatch(pattern, item):
            raise KeepalivedError(f"{key}: {item!r} is not a plain name")
    return tuple(items)


def _int(value: Any, key: str, low: int, high: int, default: int | None = None) -> int:
    """An integer in range (booleans are not numbers here)."""
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise KeepalivedError(f"{key}: {value!r} is not an integer from {low} to {high}")
    return value


def _vip(value: Any, key: str) -> str:
    """An IPv4 address with its prefix length (`10.0.0.100/24`); a bare address gets /32, as keepalived does."""
    if not isinstance(value, str):
        raise KeepalivedError(f"{key}: {value!r} is not an address like 10.0.0.100/24")
    try:
        iface = ipaddress.IPv4Interface(value)
    except ValueError as e:
        raise KeepalivedError(f"{key}: {value!r} is not an address like 10.0.0.100/24") from e
    return f"{iface.ip}/{iface.network.prefixlen}"


def members(name: str, spec: Mapping[str, Any], stage: Mapping[str, StageHost]) -> tuple[str, ...]:
    """`hosts` as written, else every stage host whose hive_keepalived has this instance, by name."""
    listed = spec.get("hosts")
    if listed:
        unknown = [h for h in listed if h not in stage]
        if unknown:
            raise KeepalivedError(f"instances.{name}.hosts: {', '.join(map(str, unknown))} not a host of the stage "
                                  f"({', '.join(sorted(stage))})")
        return tuple(str(h) for h in listed)
    found = []
    for host_name, host in sorted(stage.items()):
        other = host.get(VAR, None) or {}
        if isinstance(other, dict) and name in (other.get("instances") or {}):
            found.append(host_name)
    return tuple(found)


def parse(value: Any, stage: Mapping[str, StageHost]) -> Keepalived:
    """The site's hive_keepalived as a Keepalived (the site loader checked kinds; this checks relations)."""
    if not isinstance(value, dict):
        raise KeepalivedError(f"{VAR} must be a mapping with `instances`, not {value!r}")
    scripts = []
    for sname, s in (value.get("scripts") or {}).items():
        if not re.fullmatch(WORD, str(sname)) or not isinstance(s, dict):
            raise KeepalivedError(f"scripts.{sname}: needs a plain name and a mapping with `script`")
        cmd = s.get("script")
        if not isinstance(cmd, str) or not re.fullmatch(SCRIPT, cmd):
            raise KeepalivedError(f"scripts.{sname}.script: {cmd!r} is not an absolute command without quotes")
        weight = s.get("weight")
        scripts.append(VrrpScript(
            str(sname), cmd, _int(s.get("interval"), f"scripts.{sname}.interval", 1, 3600, 2),
            _int(s.get("fall"), f"scripts.{sname}.fall", 1, 255, 2), _int(s.get("rise"), f"scripts.{sname}.rise",
                                                                         1, 255, 2),
            None if weight is None else _int(weight, f"scripts.{sname}.weight", -253, 253),
            None if s.get("timeout") is None else _int(s.get("timeout"), f"scripts.{sname}.timeout", 1, 3600)))
    known_scripts = {s.name for s in scripts}
    instances = []
    vrids: dict[tuple[str, int], str] = {}
    for name, spec in (value.get("instances") or {}).items():
        key = f"instances.{name}"
        if not re.fullmatch(INSTANCE_NAME, str(name)) or not isinstance(spec, dict):
            raise KeepalivedError(f"{key}: needs a name of letters, digits, '_', '.', '-' and a mapping")
        interface = spec.get("interface")
        if not isinstance(interface, str) or not re.fullmatch(WORD, interface):
            raise KeepalivedError(f"{key}.interface: {interface!r} is not an interface name")
        vrid = _int(spec.get("virtual_router_id"), f"{key}.virtual_router_id", 1, 255)
        vips = tuple(_vip(v, f"{key}.virtual_ipaddress") for v in spec.get("virtual_ipaddress") or [])
        if not vips:
            raise KeepalivedError(f"{key}.virtual_ipaddress: at least one address like 10.0.0.100/24")
        hosts = members(str(name), spec, stage)
        if len(hosts) < 2:
            raise KeepalivedError(f"{key}: a VIP needs at least 2 hosts, found {list(hosts)}")
        for other in (vrids.get((interface, vrid)),):
            if other:
                raise KeepalivedError(f"{key}.virtual_router_id: {vrid} on {interface} is already {other}'s")
        vrids[(interface, vrid)] = str(name)
        track = _words(spec.get("track_interface"), f"{key}.track_interface")
        if interface in track:
            raise KeepalivedError(f"{key}.track_interface: {interface} is the instance's own interface "
                                  "(keepalived -t refuses that; it is always tracked)")
        tscripts = _words(spec.get("track_script"), f"{key}.track_script")
        missing = [s for s in tscripts if s not in known_scripts]
        if missing:
            raise KeepalivedError(f"{key}.track_script: {', '.join(missing)} not defined under scripts")
        notify = {}
        for nkey in NOTIFY_KEYS:
            path = spec.get(nkey)
            if path is not None:
                if not isinstance(path, str) or not re.fullmatch(SCRIPT, path):
                    raise KeepalivedError(f"{key}.{nkey}: {path!r} is not an absolute command without quotes")
                notify[nkey] = path
        auth = spec.get("auth_pass")
        if auth is not None and (not isinstance(auth, str) or not re.fullmatch(r"[!-~]{1,8}", auth)
                                 or '"' in auth):
            raise KeepalivedError(f"{key}.auth_pass: 1 to 8 printable characters without spaces or quotes")
        options = []
        for okey, oval in (spec.get("options") or {}).items():
            text = str(oval).lower() if isinstance(oval, bool) else str(oval)
            if not re.fullmatch(r"[a-z][a-z0-9_]*", str(okey)) or not re.fullmatch(WORD, text):
                raise KeepalivedError(f"{key}.options.{okey}: a keyword and one plain value")
            options.append((str(okey), text))
        instances.append(Instance(
            str(name), interface, vrid, vips, hosts,
            priority=_int(spec.get("priority"), f"{key}.priority", 1 + PRIORITY_STEP * (len(hosts) - 1), 254,
                          DEFAULT_PRIORITY),
            advert_int=_int(spec.get("advert_int"), f"{key}.advert_int", 1, 255, 1),
            auth_pass=auth, track_interface=track, track_script=tscripts, notify=notify, options=tuple(options)))
    if not instances:
        raise KeepalivedError(f"{VAR}.instances: at least one VRRP instance")
    user = value.get("script_user", "root")
    if not isinstance(user, str) or not re.fullmatch(r"[a-z_][a-z0-9_-]*", user):
        raise KeepalivedError(f"{VAR}.script_user: {user!r} is not a user name")
    return Keepalived(tuple(instances), tuple(scripts), user)


def private_ip(stage: Mapping[str, StageHost], host: str) -> str:
    """The address VRRP adverts go from and to: the host's hive_private_ip."""
    ip = stage[host].get("hive_private_ip", None)
    if not ip:
        raise KeepalivedError(f"{host} has no hive_private_ip for unicast VRRP")
    return str(ip)


def render(conf: Keepalived, host: str, stage: Mapping[str, StageHost]) -> str:
    """This host's keepalived.conf: global_defs, the scripts its instances track, its instances."""
    mine = conf.instances_of(host)
    used = {s for i in mine for s in i.track_script}
    out = [HEADER, "global_defs {\n", f"    router_id {host.split('.', 1)[0]}\n",
           "    enable_script_security\n", f"    script_user {conf.script_user}\n", "}\n"]
    for s in conf.scripts:
        if s.name not in used:
            continue
        out += ["\n", f"vrrp_script {s.name} {{\n", f'    script "{s.script}"\n', f"    interval {s.interval}\n",
                f"    fall {s.fall}\n", f"    rise {s.rise}\n"]
        if s.weight is not None:
            out.append(f"    weight {s.weight}\n")
        if s.timeout is not None:
            out.append(f"    timeout {s.timeout}\n")
        out.append("}\n")
    for i in mine:
        out += ["\n", f"vrrp_instance {i.name} {{\n",
                "    state BACKUP\n",  # every node BACKUP + nopreempt: a recovered node does not take the VIP back
                "    nopreempt\n",
                f"    interface {i.interface}\n", f"    virtual_router_id {i.virtual_router_id}\n",
                f"    priority {i.priority_of(host)}\n", f"    advert_int {i.advert_int}\n",
                f"    unicast_src_ip {private_ip(stage, host)}\n", "    unicast_peer {\n"]
        out += [f"        {private_ip(stage, peer)}\n" for peer in i.hosts if peer != host]
        out.append("    }\n")
        if i.auth_pass:
            out += ["    authentication {\n", "        auth_type PASS\n", f"        auth_pass {i.auth_pass}\n",
                    "    }\n"]
        out.append("    virtual_ipaddress {\n")
        out += [f"        {vip} dev {i.interface}\n" for vip in i.vips]
        out.append("    }\n")
        if i.track_interface:
            out += ["    track_interface {\n", *(f"        {t}\n" for t in i.track_interface), "    }\n"]
        if i.track_script:
            out += ["    track_script {\n", *(f"        {t}\n" for t in i.track_script), "    }\n"]
        out += [f'    {k} "{v}"\n' for k, v in i.notify.items()]
        out += [f"    {k} {v}\n" for k, v in i.options]
        out.append("}\n")
    return "".join(out)


def masked(text: str) -> str:
    """The config as reports may show it: auth_pass hidden."""
    return re.sub(r"(?m)^(\s*auth_pass )\S+$", r"\1(hidden)", text)


def site_keepalived(var: Any, stage: Mapping[str, StageHost]) -> Keepalived | None:
    """The parsed hive_keepalived of a host, None when it has none; a bad one fails the step naming the key."""
    if not var:
        return None
    try:
        return parse(var, stage)
    except KeepalivedError as e:
        raise StepFailed(f"{VAR}: {e} (nothing changed)") from e
