"""Firewall building blocks: hive-builder's saved-rules blocks and live rules, inserted one by one, never restored.

Other tasks open their ports with `ctx.ensure(rule_set_for(ctx, "drbd"))` (sources: every server's private IP,
or the internal network) or the pure `rule_set(facts, name, proto, dports, sources, internal_net)`.
Each rule set is a marked block of `-A HIVE-SERVICE ...` lines in the saved rules file (validated with
`iptables-restore --test` before it lands) plus the same rules inserted live when `iptables -C` misses them.
The live table is never flushed or restored: dockerd owns chains in it and the SSH session must survive.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hive_nornir.facts import CLIENT_PROBE, Facts
from hive_nornir.primitives.base import Plan, Primitive, Upload, parse_kv, q
from hive_nornir.primitives.lines import MAX_EDIT_BYTES, content_probe, text_diff
from hive_nornir.primitives.probes import parse_file

if TYPE_CHECKING:
    from hive_nornir.engine.protocols import TaskContext

HIVE_CHAIN = "HIVE-SERVICE"
RULES_FILE = {"redhat": "/etc/sysconfig/iptables", "debian": "/etc/iptables/rules.v4"}
VALIDATE = "iptables-restore --test %s"
IPT = ("iptables", "-w")  # -w: wait for the xtables lock (dockerd edits the table too)

# Rules as `iptables -S` prints them (without `-A CHAIN`), so the probe can find them by text.
ESTABLISHED = "-m state --state RELATED,ESTABLISHED -j ACCEPT"
ICMP = "-p icmp -j ACCEPT"
LOOPBACK = "-i lo -j ACCEPT"
SSH_OPEN = "-p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT"
REJECT = "-j REJECT --reject-with icmp-host-prohibited"
GWBRIDGE = "-i docker_gwbridge -m state --state NEW -j ACCEPT"
JUMP_HIVE = f"-j {HIVE_CHAIN}"

HIVE_MARKER = "# {mark} HIVE-BUILDER MANAGED BLOCK setup HIVE-SERVICE chain"
HIVE_END = HIVE_MARKER.replace("{mark}", "END")
SSH_PORT_MARKER = "# {mark} HIVE-BUILDER MANAGED BLOCK for SSH PORT"
STRICT_MARKER = "# {mark} HIVE-BUILDER MANAGED BLOCK for SSH SOURCE IP STRICT"

# EL's stock /etc/sysconfig/iptables (iptables-services); Debian gets the same rules when it has no file yet.
STOCK_RULES = """\
# sample configuration for iptables service
# you can edit this manually or use system-config-firewall
# please do not ask us to add additional ports/services to this default configuration
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
-A FORWARD -j REJECT --reject-with icmp-host-prohibited
COMMIT
"""
DEBIAN_HEADER = "# hive_nornir base ruleset: the rules of EL's stock /etc/sysconfig/iptables (iptables-services)\n"


@dataclass(frozen=True)
class RuleSetSpec:
    """A hive-builder rule set: protocol and destination ports."""

    proto: str
    dports: tuple[str, ...]


# hive-builder's rule sets (docker, drbd, zabbix-agent, rsyslogd roles); syslog is tcp when tls_logging.
RULE_SETS: dict[str, RuleSetSpec] = {
    "docker_api_swarm": RuleSetSpec("tcp", ("2376", "2377", "7946")),
    "docker_swarm_udp": RuleSetSpec("udp", ("7946", "4789")),
    "drbd": RuleSetSpec("tcp", ("7000:7999",)),
    "zabbix_tcp": RuleSetSpec("tcp", ("10050",)),
    "syslog": RuleSetSpec("udp", ("10514",)),
    "registry": RuleSetSpec("tcp", ("5000",)),  # hive_nornir's Debian registry is a host service, not a container
}

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_CHAIN = re.compile(r"^[A-Za-z0-9_.-]{1,28}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.:/,!=+-]{1,80}$")  # one iptables argument: no shell or quote character
_COMMENT = re.compile(r"^[A-Za-z0-9_. -]{1,60}$")  # a --comment value (may hold spaces)
ACTIONS = ("-C", "-A", "-I", "-D")


@dataclass(frozen=True)
class Rule:
    """One iptables rule as a value: chain, match arguments, target; commands come from argv(), never pasted text.

    spec is what `iptables -S` prints after `-A CHAIN` (how the probe finds the rule); save_text() is the line in
    a saved rules file. Every argument is checked, so neither form can carry a shell or quote character."""

    chain: str
    match: tuple[str, ...] = ()
    target: tuple[str, ...] = ("-j", "ACCEPT")

    def __post_init__(self) -> None:
        """A chain name, plain arguments (a --comment value may hold spaces), a `-j` target."""
        if not _CHAIN.match(self.chain):
            raise ValueError(f"not an iptables chain name: {self.chain!r}")
        if len(self.target) < 2 or self.target[0] != "-j":
            raise ValueError(f"a rule's target starts with -j: {self.target!r}")
        args = (*self.match, *self.target)
        for i, arg in enumerate(args):
            comment = i > 0 and args[i - 1] == "--comment"
            if not (_COMMENT if comment else _TOKEN).match(arg):
                raise ValueError(f"not a plain iptables argument: {arg!r}")

    @classmethod
    def parse(cls, chain: str, spec: str) -> Rule:
        """From `iptables -S` text without `-A CHAIN` (a comment in double quotes, as iptables prints it)."""
        tokens = shlex.split(spec)
        if "-j" not in tokens:
            raise ValueError(f"rule without a -j target: {spec!r}")
        jump = len(tokens) - 1 - tokens[::-1].index("-j")
        return cls(chain, tuple(tokens[:jump]), tuple(tokens[jump:]))

    @property
    def spec(self) -> str:
        """As `iptables -S` prints it after `-A CHAIN`: a value with a space in double quotes."""
        return " ".join(f'"{a}"' if " " in a else a for a in (*self.match, *self.target))

    def save_text(self) -> str:
        """The line in a saved rules file (and in `iptables -S`)."""
        return f"-A {self.chain} {self.spec}"

    def argv(self, action: str, position: int | None = None) -> list[str]:
        """`iptables -w ACTION CHAIN [position] match... target...` as an argument list (shlex.join it)."""
        if action not in ACTIONS:
            raise ValueError(f"iptables action must be one of {', '.join(ACTIONS)}, not {action!r}")
        at = [str(position)] if action == "-I" and position is not None else []
        return [*IPT, action, self.chain, *at, *self.match, *self.target]

_IFACE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
_CATCH_ALL = re.compile(r"^-j (REJECT|DROP)\b")


# -- pure rule text -------------------------------------------------------------------------------------------
def rules_path(facts: Facts) -> str:
    """The file the boot-time service restores: iptables-services on EL, netfilter-persistent on Debian."""
    return RULES_FILE["redhat" if facts.is_redhat else "debian"]


def base_rules(facts: Facts) -> str:
    """Content for a host without a saved rules file: EL's stock file (same rules on Debian)."""
    return STOCK_RULES if facts.is_redhat else DEBIAN_HEADER + STOCK_RULES.split("\n", 3)[3]


def source(value: str) -> str:
    """An address or network as `iptables -S` prints it (`10.0.0.1/32`); anything else is refused."""
    try:
        return str(ipaddress.ip_network(str(value).strip(), strict=False))
    except ValueError as exc:
        raise ValueError(f"not an IPv4 address or network: {value!r}") from exc


def port_list(dports: Iterable[str | int]) -> str:
    """`2376,2377` / `7000:7999` for -m multiport (at most 15 ports, a range counts twice)."""
    items = [str(p).strip() for p in dports]
    if not items:
        raise ValueError("a rule set needs at least one port")
    weight = 0
    for item in items:
        bounds = item.split(":")
        if len(bounds) > 2 or not all(b.isdigit() and 0 < int(b) < 65536 for b in bounds):
            raise ValueError(f"not a port or port range: {item!r}")
        weight += len(bounds)
    if weight > 15:
        raise ValueError(f"multiport takes at most 15 ports: {','.join(items)}")
    return ",".join(items)


def service_rule(name: str, proto: str, dports: Iterable[str | int], src: str) -> str:
    """One HIVE-SERVICE rule (canonical `iptables -S` form, minus `-A HIVE-SERVICE`)."""
    if not _NAME.match(name):
        raise ValueError(f"rule set name must be letters, digits, _ . - : {name!r}")
    if proto not in ("tcp", "udp"):
        raise ValueError(f"protocol must be tcp or udp, not {proto!r}")
    return (f"-s {source(src)} -p {proto} -m multiport --dports {port_list(dports)} "
            f'-m conntrack --ctstate NEW -m comment --comment "allow {name}" -j ACCEPT')


def ssh_rule(src: str, port: int = 22) -> str:
    """strict-source-ip: NEW ssh connections from one source, rate-limited like hive-builder (5/s, burst 20)."""
    return (f"-s {source(src)} -p tcp -m state --state NEW -m multiport --dports {port_list([port])} "
            f"-m limit --limit 5/sec --limit-burst 20 -j ACCEPT")


def internal_rule(iface: str, net: str) -> str:
    """internal-network: every NEW connection from the internal network on its interface."""
    if not _IFACE.match(iface):
        raise ValueError(f"not an interface name: {iface!r}")
    return f"-s {source(net)} -i {iface} -m state --state NEW -j ACCEPT"


def saved(chain: str, rules: Iterable[str]) -> tuple[str, ...]:
    """The lines of rules as they stand in a saved rules file (each checked as a Rule value)."""
    return tuple(Rule.parse(chain, rule).save_text() for rule in rules)


def ssh_port_rule(port: int) -> str:
    """An sshd port other than 22 opened to everyone (the stock file only opens 22)."""
    return f"-p tcp -m state --state NEW -m tcp --dport {port_list([port])} -j ACCEPT"


def ssh_port_lines(strict_sources: Sequence[str], ports: int | Sequence[int]) -> tuple[str, ...]:
    """Saved lines of the SSH PORT block: only without strict sources, one per ssh port other than 22."""
    wanted = _ports(ports)
    return () if strict_sources else saved("INPUT", [ssh_port_rule(p) for p in wanted if p != 22])


def strict_ssh_rules(strict_sources: Sequence[str], ports: int | Sequence[int]) -> tuple[str, ...]:
    """One rate-limited rule per ssh port and source (ports outer), so a port added later leaves the rest alone."""
    return tuple(dict.fromkeys(ssh_rule(s, p) for p in _ports(ports) for s in strict_sources))


def input_rules(strict_sources: Sequence[str] = (), ssh_port: int | Sequence[int] = 22) -> tuple[str, ...]:
    """INPUT as the iptables step wants it live: ACCEPTs for established and ssh always before the REJECT.

    ssh_port may be several ports: the one this session arrived on and hive_sshd_port (see ssh_ports()).
    """
    if strict_sources:
        return (ESTABLISHED, *strict_ssh_rules(strict_sources, ssh_port), GWBRIDGE, JUMP_HIVE, ICMP, LOOPBACK,
                REJECT)
    extra = [ssh_port_rule(p) for p in _ports(ssh_port) if p != 22]
    return (ESTABLISHED, *extra, GWBRIDGE, JUMP_HIVE, ICMP, LOOPBACK, SSH_OPEN, REJECT)


def _ports(ports: int | Sequence[int]) -> tuple[int, ...]:
    """One port or several, deduplicated in order."""
    return (int(ports),) if isinstance(ports, int) else tuple(dict.fromkeys(int(p) for p in ports))


def ssh_ports(session: int | None, wanted: int) -> tuple[int, ...]:
    """Ports ssh must stay open on: the one this session arrived on (sshd still listens there until the
    controller logs in on hive_sshd_port) and hive_sshd_port; 22 stands in for an unknown session port."""
    return tuple(dict.fromkeys((22 if session is None else session, wanted)))


# -- the saved rules file -------------------------------------------------------------------------------------
def _bare(line: str) -> str:
    return line.rstrip("\r\n")


def _fallback_index(lines: list[str]) -> int | None:
    """Where a block goes without its anchor: after the chain declarations of *filter (top of its rules)."""
    start = next((i for i, ln in enumerate(lines) if _bare(ln) == "*filter"), None)
    if start is None:
        return None
    index = start + 1
    for i in range(start + 1, len(lines)):
        text = _bare(lines[i])
        if text.startswith(":"):
            index = i + 1
        elif text == "COMMIT" or text.startswith("-"):
            break
    return index


@dataclass(eq=False)
class RulesBlock(Primitive):
    """A marked block in the saved rules file, inserted after an anchor line; the candidate must pass validate."""

    path: str
    marker: str
    lines: tuple[str, ...] = ()
    after: str | None = None  # exact anchor line; the block goes right after it (like blockinfile insertafter)
    require_anchor: bool = False  # without it, the block would be invalid (e.g. -A HIVE-SERVICE before -N)
    base: str | None = None  # content used when the file does not exist yet
    remove: tuple[str, ...] = ()  # exact lines to drop outside blocks (strict-source-ip drops the open ssh rule)
    restore: tuple[str, ...] = ()  # lines the file must hold: any not found outside the block goes into it
    mode: str = "0600"
    validate: str | None = VALIDATE
    kind = "rules"

    def __post_init__(self) -> None:
        """Markers must be single distinct lines, or the block could never be found again."""
        if "{mark}" not in self.marker or "\n" in self.marker:
            raise ValueError("marker must be one line containing {mark}")
        self.lines = tuple(self.lines)
        self.remove = tuple(self.remove)
        self.restore = tuple(self.restore)

    @property
    def ident(self) -> str:
        """Reports name the file and the block."""
        return f"rules[{self.path}:{self.marker.replace('{mark} ', '')}]"

    def probe(self, facts: Facts) -> str:
        """Mode/owner and the whole content: the edit happens in Python."""
        return content_probe(self.path)

    def edit(self, text: str) -> str:
        """Drop `remove` lines, then replace the marked span or insert it after the anchor."""
        lines = [ln for ln in text.splitlines(keepends=True) if _bare(ln) not in self.remove]
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        begin, end = self.marker.replace("{mark}", "BEGIN"), self.marker.replace("{mark}", "END")
        starts = [i for i, ln in enumerate(lines) if _bare(ln) == begin]
        ends = [i for i, ln in enumerate(lines) if _bare(ln) == end]
        if (starts or ends) and (len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]):
            raise ValueError(f"{self.path}: markers {begin!r}/{end!r} are unbalanced; fix the file by hand")
        outside = {_bare(ln) for ln in (lines[:starts[0]] + lines[ends[0] + 1:] if starts else lines)}
        block = (*self.lines, *(r for r in self.restore if r not in outside and r not in self.lines))
        wanted = [f"{ln}\n" for ln in (begin, *block, end)] if block else []
        if starts:
            return "".join(lines[:starts[0]] + wanted + lines[ends[0] + 1:])
        if not wanted:
            return "".join(lines)
        anchor = next((i + 1 for i, ln in enumerate(lines) if self.after and _bare(ln) == self.after), None)
        if anchor is None:
            if self.require_anchor:
                raise LookupError(f"{self.path} has no line {self.after!r} (the iptables step writes it)")
            anchor = _fallback_index(lines)
            if anchor is None:
                raise ValueError(f"{self.path} has no *filter table; fix the file by hand")
        return "".join(lines[:anchor] + wanted + lines[anchor:])

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """Edit the text (or the base for a new file); upload the whole file, keeping mode and owner."""
        found = parse_file(self.path, probe_output)
        mode, owner, group, target = self.mode, "root", "root", self.path
        if found.exists in ("notfile", "dangling"):
            return Plan(error=f"{self.path} exists and is not a regular file"
                              + (f" (a symlink to missing {found.target})" if found.exists == "dangling" else ""))
        if found.exists == "yes":
            if found.stat is None or found.content is None:
                return Plan(error=f"cannot read {self.path} (larger than {MAX_EDIT_BYTES} bytes?)")
            mode, owner, group = found.stat.mode.zfill(4), found.stat.user, found.stat.group
            current: str | None = found.content.decode("utf-8", "surrogateescape")
            target = found.target
        elif found.exists == "no":
            current = None
            if not self.lines:
                return Plan()  # nothing to remove from a file that is not there
            if self.base is None:
                return Plan(missing=f"{self.path} does not exist (the iptables step creates it)")
            if not found.parent:
                return Plan(missing=f"directory {posixpath.dirname(self.path)} does not exist")
        else:
            return Plan(error=f"cannot stat {self.path} (probe printed nothing useful)")
        try:
            new = self.edit(current if current is not None else str(self.base))
        except LookupError as exc:
            return Plan(missing=str(exc))
        except ValueError as exc:
            return Plan(error=str(exc))
        if new == current:
            return Plan()
        refusal = saved_refusal(self.path, current, new, facts.ssh_client, facts.ssh_port)
        if refusal:
            return Plan(error=refusal)
        upload = Upload(target, new.encode("utf-8", "surrogateescape"), mode, owner, group, self.validate)
        verb = "create" if current is None else "update"
        return Plan(changed=True, summary=f"{verb} {self.path}: {self.marker.replace('# {mark} ', '')}",
                    diff=text_diff(self.path, current, new), uploads=[upload])


def saved_chains(text: str) -> dict[str, tuple[list[str], str]]:
    """Every chain of a saved file's *filter table: its rules as `iptables -S` text (without `-A CHAIN`) and its
    policy (`-` for a user chain)."""
    chains: dict[str, tuple[list[str], str]] = {}
    in_filter = False
    for raw in text.splitlines():
        parts = raw.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0].startswith("*"):
            in_filter = parts[0] == "*filter"
        elif not in_filter:
            continue
        elif parts[0] == "COMMIT":
            in_filter = False
        elif parts[0].startswith(":") and len(parts) > 1:
            chains.setdefault(parts[0][1:], ([], parts[1]))
            chains[parts[0][1:]] = (chains[parts[0][1:]][0], parts[1])
        elif parts[0] == "-N" and len(parts) > 1:
            chains.setdefault(parts[1], ([], "-"))
        elif parts[0] == "-A" and len(parts) > 2:
            chains.setdefault(parts[1], ([], "-" if parts[1] not in ("INPUT", "FORWARD", "OUTPUT") else "ACCEPT"))
            chains[parts[1]][0].append(" ".join(parts[2:]))
        elif parts[0] == "-I" and len(parts) > 2:
            chains.setdefault(parts[1], ([], "-" if parts[1] not in ("INPUT", "FORWARD", "OUTPUT") else "ACCEPT"))
            numbered = len(parts) > 3 and parts[2].isdigit()
            at = int(parts[2]) - 1 if numbered else 0
            chains[parts[1]][0].insert(max(at, 0), " ".join(parts[3:] if numbered else parts[2:]))
    return chains


def saved_chain(text: str, chain: str = "INPUT") -> tuple[list[str], str]:
    """One chain of a saved file's *filter table as `iptables -S` rules (without `-A CHAIN`) and its policy."""
    rules, policy = saved_chains(text).get(chain, ([], "ACCEPT"))
    return rules, policy


def _saved_admits(text: str, addr: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> bool:
    """The INPUT path of a saved file, user chains followed, admits a NEW login from addr to port."""
    chains = saved_chains(text)
    rules, policy = chains.get("INPUT", ([], "ACCEPT"))
    return admits(rules, addr, port, policy, {name: r for name, (r, _) in chains.items()})


def saved_refusal(path: str, old: str | None, new: str, client: str, port: int | None) -> str:
    """Why the candidate rules file would lock out our next login once it is loaded (at boot), or ''.

    The same test as the live rules: INPUT must surely ACCEPT a NEW tcp connection from the address this SSH
    session comes from to the port it arrived on. A file that already fails it may still be edited (the edit
    does not make it worse; the iptables step restores the open ssh rule)."""
    new_rules, new_policy = saved_chain(new)
    old_rules, old_policy = saved_chain(old) if old is not None else ([], "ACCEPT")
    try:
        addr = ipaddress.ip_address(client.strip()) if client.strip() else None
    except ValueError:
        addr = None
    if addr is None or port is None:
        cutting = (any(r not in new_rules for r in old_rules) or new_policy != old_policy
                   or any(_CATCH_ALL.match(r) and r not in old_rules for r in new_rules))
        if cutting:
            return (f"refusing: this change deletes or adds a REJECT/DROP in INPUT of {path}, but the address and "
                    "port this SSH session arrived on are unknown ($SSH_CONNECTION not found), so it cannot be "
                    "shown that a login would still be accepted after the next boot")
        return ""
    if _saved_admits(new, addr, port):
        return ""
    if old is not None and not _saved_admits(old, addr, port):
        return ""
    return (f"refusing: {path} would not accept a NEW ssh login from {client} on port {port} (the address and "
            "port this session uses) once it is loaded, i.e. after the next boot; nothing changed")


# -- the live table ---------------------------------------------------------------------------------------------
def _position(sim: list[str], wanted: Sequence[str], i: int) -> int:
    """Insert index for wanted[i]: after the nearest earlier wanted rule, else before a later one, never after
    a catch-all REJECT/DROP (unless the rule is the catch-all itself)."""
    catch = next((k for k, r in enumerate(sim) if _CATCH_ALL.match(r)), len(sim))
    if _CATCH_ALL.match(wanted[i]):
        return len(sim)
    pos = None
    for k in range(i - 1, -1, -1):
        if wanted[k] in sim:
            pos = sim.index(wanted[k]) + 1
            break
    if pos is None:
        pos = next((sim.index(w) for w in wanted[i + 1:] if w in sim), catch)
    return min(pos, catch)


def client_address(output: str) -> str:
    """The address our SSH session comes from, as the host sees it (from the probe), or ''."""
    return parse_kv(output).get("ssh_client", "").strip()


def client_port(output: str) -> int | None:
    """The host port our SSH session arrived on (SSH_CONNECTION's last field, from the probe), or None."""
    value = parse_kv(output).get("ssh_port", "").strip()
    return int(value) if value.isdigit() and 0 < int(value) < 65536 else None


def session_port(ctx: TaskContext) -> int | None:
    """Where sshd received hive_nornir's session on the host (not the controller's published port): from the facts,
    else one read-only probe."""
    if ctx.facts.ssh_port is not None:
        return ctx.facts.ssh_port
    return client_port(ctx.run(CLIENT_PROBE, check=False).stdout)


def _run(argv: Sequence[str]) -> str:
    """One command line from an argument list."""
    return shlex.join(argv)


@dataclass(eq=False)
class LiveRules(Primitive):
    """Rules present (in this order) and absent in one live chain; missing ones are inserted one by one.

    rules/absent take Rule values or their `iptables -S` text (parsed into Rules of this chain)."""

    chain: str
    rules: tuple[str | Rule, ...] = ()
    absent: tuple[str | Rule, ...] = ()
    create_chain: bool = False
    label: str = ""
    ssh_sources: tuple[str, ...] = ()  # when set: refuse changes that would lock out this SSH session's address
    kind = "iptables"

    def __post_init__(self) -> None:
        """Rule values of this chain; plain tuples (the plan indexes them)."""
        self.wanted = tuple(self._rule(r) for r in self.rules)
        self.unwanted = tuple(self._rule(r) for r in self.absent)
        self.rules, self.absent = tuple(self.rules), tuple(self.absent)
        self.ssh_sources = tuple(self.ssh_sources)

    def _rule(self, rule: str | Rule) -> Rule:
        value = Rule.parse(self.chain, rule) if isinstance(rule, str) else rule
        if value.chain != self.chain:
            raise ValueError(f"{value.save_text()!r} is not a rule of chain {self.chain}")
        return value

    @property
    def ident(self) -> str:
        """Reports name the chain and what the rules are for."""
        return f"iptables[{self.chain}{':' + self.label if self.label else ''}]"

    def probe(self, facts: Facts) -> str:
        """`iptables -S CHAIN` for positions, `iptables -C` per rule for presence (format-proof); read-only."""
        show = _run([*IPT, "-S", self.chain])
        lines = ["if ! command -v iptables >/dev/null 2>&1; then echo iptables=no; else",
                 f"if {show} >/dev/null 2>&1; then echo chain=yes; {show} | sed 's/^/rule=/'; "
                 f"else echo chain=no; fi"]
        for i, rule in enumerate(self.wanted):
            lines.append(f"{_run(rule.argv('-C'))} >/dev/null 2>&1 && echo has={i}")
        for i, rule in enumerate(self.unwanted):
            lines.append(f"{_run(rule.argv('-C'))} >/dev/null 2>&1 && echo stale={i}")
        if self.chain == "INPUT":
            lines.append(CLIENT_PROBE)
        lines.append("fi; true")
        return "\n".join(lines)

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """Insert what -C misses at its place, delete stale rules after, then verify every rule with -C."""
        out = probe_output.splitlines()
        if "iptables=no" in out:
            return Plan(missing="iptables is not installed")
        commands: list[str] = []
        if "chain=yes" not in out:
            if not self.create_chain:
                return Plan(missing=f"chain {self.chain} does not exist (the iptables step creates it)")
            commands.append(_run([*IPT, "-N", self.chain]))
        prefix = f"-A {self.chain} "
        specs = tuple(r.spec for r in self.wanted)
        sim = [ln[5 + len(prefix):] for ln in out if ln.startswith("rule=" + prefix)]
        has = {int(ln[4:]) for ln in out if ln.startswith("has=") and ln[4:].isdigit()}
        stale = [self.unwanted[int(ln[6:])] for ln in out if ln.startswith("stale=") and ln[6:].isdigit()]
        diff: list[str] = [f"+ -N {self.chain}\n"] if commands else []
        added = 0
        for i, rule in enumerate(self.wanted):
            if i in has:
                continue
            pos = _position(sim, specs, i)
            sim.insert(pos, rule.spec)
            commands.append(_run(rule.argv("-I", pos + 1) if pos < len(sim) - 1 else rule.argv("-A")))
            diff.append(f"+ {rule.save_text()}\n")
            added += 1
        for rule in stale:
            commands.append(_run(rule.argv("-D")))
            diff.append(f"- {rule.save_text()}\n")
            if rule.spec in sim:
                sim.remove(rule.spec)
        if not commands:
            return Plan()
        cutting = bool(stale) or any(_CATCH_ALL.match(r) for r in specs if r in sim and specs.index(r) not in has)
        problem = self._unsafe(sim, probe_output, cutting)
        if problem:
            return Plan(error=problem)
        commands += [f"{_run(r.argv('-C'))} || {{ echo {q(f'hive: rule missing after insert: {r.save_text()}')} >&2; "
                     f"exit 1; }}" for r in self.wanted]
        commands += [f"if {_run(r.argv('-C'))} 2>/dev/null; then echo {q(f'hive: rule still there: {r.save_text()}')} "
                     f">&2; exit 1; fi" for r in stale]
        parts = [f"insert {added} rule(s)"] if added else []
        parts += [f"delete {len(stale)} rule(s)"] if stale else []
        summary = f"{self.chain}: " + (", ".join(parts) or "create chain")
        return Plan(changed=True, summary=summary, diff="".join(diff), commands=commands)

    def _unsafe(self, sim: list[str], probe_output: str, cutting: bool) -> str:
        """Why the planned chain could cut us off: a REJECT before the established ACCEPT, or an INPUT chain
        that would not accept a NEW login from this session's address on this session's port."""
        catch = next((k for k, r in enumerate(sim) if _CATCH_ALL.match(r)), None)
        if self.chain == "INPUT" and catch is not None and ESTABLISHED not in sim[:catch]:
            return f"refusing: INPUT would REJECT before `{ESTABLISHED}` (the SSH session would be cut)"
        if self.chain != "INPUT":
            return ""
        client, port = client_address(probe_output), client_port(probe_output)
        try:
            addr = ipaddress.ip_address(client) if client else None
        except ValueError:
            addr = None
        if addr is None or port is None:
            if cutting:
                return ("refusing: this change deletes or adds a REJECT/DROP in INPUT, but the address and port "
                        "this SSH session arrived on are unknown ($SSH_CONNECTION not found), so it cannot be "
                        "shown that a new login would still be accepted")
            return ""
        if admits(sim, addr, port, _policy(probe_output, self.chain)):
            return ""
        if self.ssh_sources and not any(addr in ipaddress.ip_network(s, strict=False) for s in self.ssh_sources):
            return (f"refusing: this SSH session comes from {client}, which hive_ssh_source_ips "
                    f"({', '.join(self.ssh_sources)}) does not cover; the next login would be rejected")
        return (f"refusing: INPUT would not accept a NEW ssh login from {client} on port {port}, the port this "
                f"session arrived on (sshd still listens there); the next login would be rejected")


def _policy(probe_output: str, chain: str) -> str:
    """The chain's policy from `iptables -S` (`-P INPUT ACCEPT`); ACCEPT when not shown."""
    for line in probe_output.splitlines():
        if line.startswith(f"rule=-P {chain} "):
            return line.split()[-1]
    return "ACCEPT"


def _matches(rule: str, addr: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> bool | None:
    """Whether a rule matches a NEW tcp packet from addr to port: True, False, or None (cannot tell)."""
    tokens = rule.split()
    verdict: bool | None = True
    i = 0
    while i < len(tokens):
        opt = tokens[i]
        if opt == "!":  # a negated match: not evaluated here
            verdict, i = None, i + 3
            continue
        arg = tokens[i + 1] if i + 1 < len(tokens) else ""
        i += 2
        if opt in ("-m", "-j", "--limit", "--limit-burst", "--reject-with", "--comment"):
            if opt == "--comment" and arg.startswith('"'):
                while not tokens[i - 1].endswith('"') and i < len(tokens):
                    i += 1
            continue
        if opt == "-s":
            try:
                ok: bool | None = addr in ipaddress.ip_network(arg, strict=False)
            except ValueError:
                ok = None
        elif opt == "-p":
            ok = arg in ("tcp", "all", "6")
        elif opt in ("--state", "--ctstate"):
            ok = "NEW" in arg.split(",")
        elif opt in ("--dport", "--dports"):
            ok = any(_in_range(port, item) for item in arg.split(","))
        else:  # -i, -d, negations, other matches: this host's view cannot be shown from here
            ok = None
        if ok is False:
            return False
        if ok is None:
            verdict = None
    return verdict


def _in_range(port: int, item: str) -> bool:
    """`22` or `7000:7999` contains port."""
    low, _, high = item.partition(":")
    return low.isdigit() and int(low) <= port <= int(high if high.isdigit() else low)


def admits(rules: Sequence[str], addr: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int,
           policy: str = "ACCEPT", chains: dict[str, list[str]] | None = None) -> bool:
    """Whether INPUT (rules in order, `iptables -S` form) surely ACCEPTs a NEW login from addr to port before any
    REJECT/DROP that could match it. A jump into a chain of `chains` (a saved file has them all) is followed;
    without them jumps are passed over (the live check sees INPUT only; HIVE-SERVICE only ACCEPTs)."""
    verdict = _walk(rules, addr, port, chains or {}, depth=0)
    return verdict if verdict is not None else policy == "ACCEPT"


def _walk(rules: Sequence[str], addr: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int,
          chains: dict[str, list[str]], depth: int) -> bool | None:
    """True (surely accepted), False (possibly rejected) or None (fell through / returned) for one chain."""
    for rule in rules:
        tokens = rule.split()
        jump = len(tokens) - 1 - tokens[::-1].index("-j") if "-j" in tokens else -1
        target = tokens[jump + 1] if 0 <= jump < len(tokens) - 1 else ""
        hit = _matches(rule, addr, port)
        if target == "ACCEPT" and hit is True:
            return True
        if target in ("REJECT", "DROP") and hit is not False:
            return False
        if target == "RETURN" and hit is True:
            return None
        if target in chains and hit is not False:
            if depth >= 8:
                return False  # a jump loop or a deep tree: not shown to admit
            inner = _walk(chains[target], addr, port, chains, depth + 1)
            if inner is False or (inner is True and hit is True):
                return inner
    return None


# -- rule sets (called by the docker, drbd, zabbix-agent and rsyslogd tasks) ---------------------------------
def rule_set(facts: Facts, name: str, proto: str | None = None, dports: Sequence[str | int] | None = None,
             sources: Sequence[str] = (), internal_net: str | None = None) -> list[Primitive]:
    """hive-builder's iptables.yml: a saved block `for <name>` plus the same rules live in HIVE-SERVICE.

    proto/dports default to RULE_SETS[name]; with internal_net (`addr/cidr`) that network is the only source.
    """
    spec = RULE_SETS.get(name)
    proto = proto or (spec.proto if spec else "")
    ports = tuple(dports) if dports else (spec.dports if spec else ())
    if not proto or not ports:
        raise ValueError(f"rule set {name!r} is not one of {', '.join(RULE_SETS)}: give proto and dports")
    srcs = [internal_net] if internal_net else list(dict.fromkeys(sources))
    if not srcs:
        raise ValueError(f"rule set {name!r} has no sources")
    rules = tuple(dict.fromkeys(service_rule(name, proto, ports, s) for s in srcs))
    return [
        RulesBlock(path=rules_path(facts), marker=f"# {{mark}} HIVE-BUILDER MANAGED BLOCK for {name}",
                   lines=saved(HIVE_CHAIN, rules), after=HIVE_END, require_anchor=True),
        LiveRules(chain=HIVE_CHAIN, rules=rules, label=f"allow {name}"),
    ]


def default_sources(ctx: TaskContext) -> list[str]:
    """Private IPs of every server of the stage (not narrowed by --limit), in site order."""
    return [str(h.get("hive_private_ip")) for h in ctx.stage_hosts().values()
            if "servers" in h.groups and h.get("hive_private_ip")]


def internal_net(ctx: TaskContext) -> str | None:
    """`hive_internal_net_addr/hive_internal_net_cidr` when the site has an internal network, else None."""
    addr, cidr = ctx.var("hive_internal_net_addr"), ctx.var("hive_internal_net_cidr")
    return f"{addr}/{cidr}" if addr and cidr is not None else None


def rule_set_for(ctx: TaskContext, name: str, proto: str | None = None, dports: Sequence[str | int] | None = None,
                 extra_sources: Sequence[str] = ()) -> list[Primitive]:
    """rule_set() with hive-builder's default sources (all servers + extras) or the internal network."""
    return rule_set(ctx.facts, name, proto, dports, [*default_sources(ctx), *extra_sources], internal_net(ctx))
