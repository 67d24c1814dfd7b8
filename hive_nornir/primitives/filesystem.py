"""Directories and symlinks: read with test/stat/readlink, changed with install, chmod, chown, ln."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Plan, Primitive
from hive_nornir.primitives.probes import argv, parse_kv, parse_stat, q, stat_probe
from hive_nornir.primitives.resources import ACCOUNTS, made_with_parents, parent_exists, path

STATES = ("present", "absent")
_MODE = re.compile(r"^0?[0-7]{3,4}$")
# never `rm -rf` these, whatever a site says: a typo must not wipe a host
PROTECTED = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media", "/mnt", "/opt",
    "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib",
    "/usr/local", "/usr/sbin", "/usr/share", "/var", "/var/lib", "/var/log", "/var/tmp",
})


def _absolute(path: str) -> str:
    """Normalised absolute path; relative paths mean nothing on a remote host."""
    if not path.startswith("/"):
        raise ValueError(f"path must be absolute, not {path!r}")
    return posixpath.normpath(path) if path != "//" else "/"


@dataclass(eq=False)
class Directory(Primitive):
    """Ensure a directory exists with this mode/owner (parents as needed), or is gone."""

    path: str
    mode: str | None = None
    owner: str | None = None
    group: str | None = None
    state: str = "present"
    kind = "directory"

    def __post_init__(self) -> None:
        """Validate early; refuse to ever delete a system directory."""
        self.path = _absolute(self.path)
        if self.state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, not {self.state!r}")
        if self.mode is not None and not _MODE.match(self.mode):
            raise ValueError(f"mode must be octal like '0755', not {self.mode!r}")
        if self.state == "absent" and self.path in PROTECTED:
            raise ValueError(f"refusing to remove {self.path}")

    @property
    def ident(self) -> str:
        """Reports name the path."""
        return f"directory[{self.path}]"

    def probe(self, facts: Facts) -> str:
        """Type first (a symlink to a directory counts as one), then mode and owner by name and number."""
        p = q(self.path)
        parent = q(posixpath.dirname(self.path))
        return (f"if [ -L {p} ]; then echo link=yes; fi; "
                f"if [ -d {p} ]; then echo type=dir; {stat_probe(self.path)}; "
                f"elif [ -e {p} ]; then echo type=other; else echo type=none; "
                f"if [ -d {parent} ]; then echo parent=yes; fi; fi")

    def reads(self) -> frozenset[str]:
        """The path; account names too when an owner other than root is wanted (stat prints names)."""
        named = {self.owner, self.group} - {None, "root"}
        return frozenset({path(self.path)} | ({ACCOUNTS} if named else set()))

    def writes(self) -> frozenset[str]:
        """The path (and, when removed, everything under it); `install -d` also makes missing parents."""
        return made_with_parents(self.path)

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """install -d for a new one, chmod/chown for a wrong one, rm -rf only when absent was asked."""
        kv = parse_kv(probe_output)
        kind = kv.get("type", "")
        if not kind:
            return Plan(error=f"cannot inspect {self.path} (probe printed nothing)")
        if self.state == "absent":
            if kind == "none":
                return Plan()
            if kv.get("link") == "yes":
                return Plan(changed=True, summary=f"remove symlink {self.path}",
                            diff=f"- {self.path} (symlink)\n", commands=[argv("rm", "-f", "--", self.path)])
            if kind != "dir":
                return Plan(error=f"{self.path} is not a directory; not removing it")
            return Plan(changed=True, summary=f"remove directory {self.path}", diff=f"- {self.path}/\n",
                        commands=[argv("rm", "-rf", "--", self.path)])
        if kind == "other":
            return Plan(error=f"{self.path} exists and is not a directory")
        if kind == "none":
            opts = [word for flag, value in (("-m", self.mode), ("-o", self.owner), ("-g", self.group)) if value
                    for word in (flag, value)]
            details = ", ".join(f"{k} {v}" for k, v in (("mode", self.mode), ("owner", self.owner),
                                                          ("group", self.group)) if v)
            return Plan(changed=True, summary=f"create directory {self.path}",
                        diff=f"+ {self.path}/" + (f" ({details})" if details else "") + "\n",
                        commands=[argv("install", "-d", *opts, self.path)],
                        writes=frozenset({path(self.path)}) if kv.get("parent") == "yes" else None)
        stat = parse_stat(kv.get("stat"))
        if stat is None:
            return Plan(error=f"cannot stat {self.path} (probe printed nothing useful)")
        commands: list[str] = []
        notes: list[str] = []
        if self.mode is not None and not stat.mode_is(self.mode):
            commands.append(argv("chmod", self.mode, self.path))
            notes.append(f"mode {stat.mode} -> {self.mode}")
        if not stat.owned_by(self.owner, self.group):
            spec = (self.owner or "") + (f":{self.group}" if self.group else "")
            commands.append(argv("chown", spec, self.path))
            notes.append(f"owner {stat.user}:{stat.group} -> {self.owner or stat.user}:{self.group or stat.group}")
        if not commands:
            return Plan()
        return Plan(changed=True, summary=f"{self.path}: " + ", ".join(notes),
                    diff="".join(f"~ {n}\n" for n in notes), commands=commands, writes=frozenset({path(self.path)}))


@dataclass(eq=False)
class Symlink(Primitive):
    """Ensure `path` is a symlink to `target` (replacing a regular file there), or is no symlink."""

    path: str
    target: str = ""
    state: str = "present"
    require_target: bool = False  # True: never create a dangling link (a zone file the host's tzdata lacks)
    kind = "symlink"

    def __post_init__(self) -> None:
        """A link needs a target; relative targets are kept as written (relative to the link's directory)."""
        self.path = _absolute(self.path)
        if self.state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, not {self.state!r}")
        if self.state == "present" and not self.target:
            raise ValueError(f"symlink {self.path} needs a target")
        if self.path == "/":
            raise ValueError("refusing to manage / as a symlink")

    @property
    def ident(self) -> str:
        """Reports name the link."""
        return f"symlink[{self.path}]"

    def probe(self, facts: Facts) -> str:
        """The current link text (not resolved), or what else is at the path."""
        p, parent = q(self.path), q(posixpath.dirname(self.path))
        probe = (f"if [ -L {p} ]; then printf 'link='; readlink -- {p}; "
                 f"elif [ -d {p} ]; then echo type=dir; elif [ -e {p} ]; then echo type=file; "
                 f"else echo type=none; if [ -d {parent} ]; then echo parent=yes; fi; fi")
        if self.require_target and self.state == "present":
            target = q(posixpath.join(posixpath.dirname(self.path), self.target))
            probe += f"; if [ -e {target} ]; then echo target=yes; fi"
        return probe

    def reads(self) -> frozenset[str]:
        """The link (and its directory), and the target when it must exist."""
        items = {path(self.path), parent_exists(self.path)}
        if self.require_target and self.state == "present":
            items.add(path(posixpath.join(posixpath.dirname(self.path), self.target)))
        return frozenset(items)

    def writes(self) -> frozenset[str]:
        """The link itself."""
        return frozenset({path(self.path)})

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """ln -sfn when the link text differs; a directory in the way is never replaced."""
        kv = parse_kv(probe_output)
        link = kv.get("link")
        kind = "link" if link is not None else kv.get("type", "")
        if not kind:
            return Plan(error=f"cannot inspect {self.path} (probe printed nothing)")
        if self.state == "absent":
            if kind == "link":
                return Plan(changed=True, summary=f"remove symlink {self.path}",
                            diff=f"- {self.path} -> {link}\n", commands=[argv("rm", "-f", "--", self.path)])
            if kind == "none":
                return Plan()
            return Plan(error=f"{self.path} is not a symlink; not removing it")
        if self.require_target and kv.get("target") != "yes":
            return Plan(missing=f"{self.target} does not exist on this host; not linking {self.path} to it")
        if kind == "link" and link == self.target:
            return Plan()
        if kind == "dir":
            return Plan(error=f"{self.path} is a directory; cannot replace it with a symlink")
        if kind == "none" and kv.get("parent") != "yes":
            return Plan(missing=f"directory of {self.path} does not exist")
        command = argv("ln", "-sfn", "--", self.target, self.path)
        if kind == "link":
            return Plan(changed=True, summary=f"{self.path} -> {self.target} (was {link})",
                        diff=f"- {self.path} -> {link}\n+ {self.path} -> {self.target}\n", commands=[command])
        verb = "replace file" if kind == "file" else "create symlink"
        before = f"- {self.path} (file)\n" if kind == "file" else ""
        return Plan(changed=True, summary=f"{verb} {self.path} -> {self.target}",
                    diff=f"{before}+ {self.path} -> {self.target}\n", commands=[command])
