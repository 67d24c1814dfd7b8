"""Sysctl: the running value and one persisted line per key, read with a single process spawn."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Plan, Primitive
from hive_nornir.primitives.probes import argv, kv_lines, parse_kv, q
from hive_nornir.primitives.resources import exists, made_with_parents, path

PERSIST_FILE = "/etc/sysctl.d/99-hive.conf"
PRINT_LINE = "%s\\n"  # printf's format for one line: the value is an argument, never part of the format
_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@/-]*$")


def normalize(value: str | int) -> str:
    """`4096 65000` and `4096\t65000` are the same setting; sysctl prints tabs, users type spaces."""
    return " ".join(str(value).split())


def proc_path(name: str) -> str:
    """`net.core.somaxconn` -> /proc/sys/net/core/somaxconn; a name with `/` is already a path."""
    return "/proc/sys/" + (name if "/" in name else name.replace(".", "/"))


def _key_regex(name: str) -> str:
    """ERE for a key in either spelling (`net.core.x` or `net/core/x`); other key chars are literal."""
    return "".join("[./]" if c in "./" else c for c in name)


def _sed_replacement(text: str) -> str:
    """Escape `\\`, `&` and the `|` delimiter in a sed replacement."""
    return text.replace("\\", "\\\\").replace("&", "\\&").replace("|", "\\|")


@dataclass(eq=False)
class Sysctl(Primitive):
    """Ensure a kernel parameter has this value now and after reboot (a line in a sysctl.d file)."""

    name: str
    value: str | int
    persist_file: str | None = PERSIST_FILE  # None: set the running value only
    kind = "sysctl"

    def __post_init__(self) -> None:
        """Keys and values end up in sed and sysctl argv: refuse what would break either."""
        if not _KEY.match(self.name) or ".." in self.name:
            raise ValueError(f"invalid sysctl name {self.name!r}")
        if not normalize(self.value) or any(c in str(self.value) for c in "\n\r="):
            raise ValueError(f"invalid value {self.value!r} for sysctl {self.name}")

    @property
    def ident(self) -> str:
        """Reports name the key."""
        return f"sysctl[{self.name}]"

    @property
    def want(self) -> str:
        """The desired value as sysctl would print it (single spaces)."""
        return normalize(self.value)

    @property
    def line(self) -> str:
        """The persisted line, in the `key = value` style of sysctl.conf(5)."""
        return f"{self.name} = {self.want}"

    def probe(self, facts: Facts) -> str:
        """One `cat` of the /proc/sys file (the shell's byte-wise `read` sees only its first byte there),
        then the persist file's lines via builtins."""
        path = proc_path(self.name)
        lines = [f"set -f; if {argv('test', '-e', path)}; then v=$({argv('cat', path)}); "
                 "echo current=$v; else echo current=MISSING; fi"]  # $v unquoted: one line
        if self.persist_file:
            f = q(self.persist_file)
            lines.append(f"if [ -f {f} ]; then while IFS= read -r l || [ -n \"$l\" ]; do "
                         f"case \"$l\" in *=*) printf 'persisted=%s\\n' \"$l\";; esac; done < {f}; fi")
        return "\n".join(lines)

    def reads(self) -> frozenset[str]:
        """The running value and this key's lines of the persist file (other keys' lines do not matter to it).
        Two names of one kernel setting (ip_forward and conf.all.forwarding) are not known to be the same."""
        items = {path(proc_path(self.name))}
        if self.persist_file:
            items.add(path(self.persist_file, self.name.replace("/", ".")))
        return frozenset(items)

    def writes(self) -> frozenset[str]:
        """What it reads (the sed touches no other key's line), and the persist file's directory (mkdir -p)."""
        items = set(self.reads())
        if self.persist_file:
            directory = posixpath.dirname(self.persist_file)
            items |= (made_with_parents(directory) - {path(directory)}) | {exists(directory)}
        return frozenset(items)

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """sysctl -w when the running value differs; rewrite or append the key's line if not persisted."""
        kv = parse_kv(probe_output)
        current = kv.get("current", "MISSING")
        if current == "MISSING":
            return Plan(missing=f"sysctl {self.name} does not exist on this kernel ({proc_path(self.name)})")
        current = normalize(current)
        commands: list[str] = []
        notes: list[str] = []
        diff: list[str] = []
        if current != self.want:
            commands.append(argv("sysctl", "-q", "-w", f"{self.name}={self.want}"))
            notes.append(f"{self.name} = {self.want} (was {current})")
            diff += [f"- {self.name} = {current}", f"+ {self.line}"]
        if self.persist_file and not self._persisted(probe_output):
            commands.append(self._persist_command())
            notes.append(f"persist in {self.persist_file}")
            diff.append(f"+ {self.persist_file}: {self.line}")
        if not commands:
            return Plan()
        return Plan(changed=True, summary="sysctl " + "; ".join(notes), diff="\n".join(diff) + "\n",
                    commands=commands)

    def _persisted(self, output: str) -> bool:
        """Every line that sets this key (sysctl.d's last one wins) already carries the wanted value."""
        found = []
        for name, persisted in kv_lines(output):
            if name != "persisted":
                continue
            key, _, value = persisted.partition("=")
            key = key.strip().lstrip("-").strip()
            if key.replace("/", ".") == self.name.replace("/", "."):
                found.append(normalize(value))
        return bool(found) and all(v == self.want for v in found)

    def _persist_command(self) -> str:
        """Replace this key's lines in place, or append one; other keys in the shared file are untouched."""
        path = self.persist_file or PERSIST_FILE
        key = _key_regex(self.name)
        match = f"^[[:space:]]*-?{key}[[:space:]]*="
        replace = f"s|^[[:space:]]*-?{key}[[:space:]]*=.*$|{_sed_replacement(self.line)}|"
        return (f"{argv('mkdir', '-p', posixpath.dirname(path))}; if {argv('grep', '-Eq', match, path)} "
                f"2>/dev/null; then {argv('sed', '-i', '-E', replace, path)}; "
                f"else if {argv('test', '-s', path)} && [ -n \"$({argv('tail', '-c1', path)})\" ]; "
                f"then echo >> {q(path)}; fi; {argv('printf', PRINT_LINE, self.line)} >> {q(path)}; fi")
