"""Packages: one query of the package database decides; apt/dnf run only for what is missing."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Plan, Primitive
from hive_nornir.primitives.probes import argv
from hive_nornir.primitives.resources import EVERYTHING, PACKAGES, path

STATES = ("present", "absent", "latest")
APT_LISTS = "/var/lib/apt/lists"
APT_STAMP = "/var/lib/apt/periodic/update-success-stamp"  # the stamp Ubuntu's apt hook and Ansible use
APT_ENV = "DEBIAN_FRONTEND=noninteractive"  # a leading assignment word: the shell puts it in apt's environment
# A config file the operator (or an earlier step) wrote before the package arrived is kept, never a prompt.
APT_KEEP_CONFIG = ("-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold")
POLICY = "--candidates--"  # what follows it is apt-cache policy / dnf list output, unprefixed
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._:~@-]*$")


def _base(name: str) -> str:
    """`libc6:amd64` is `libc6` in the database; compare on the bare name."""
    return name.split(":", 1)[0]


@dataclass(eq=False)
class Packages(Primitive):
    """Ensure packages are installed (or removed); apt refreshes its lists only when they are stale."""

    names: Sequence[str]
    state: str = "present"
    update_cache: bool = True
    cache_valid_minutes: int = 60
    kind = "packages"

    def __post_init__(self) -> None:
        """Reject bad input before any host sees it: a name starting with `-` would be an option."""
        if isinstance(self.names, str):
            self.names = [self.names]
        self.names = tuple(dict.fromkeys(self.names))
        if not self.names:
            raise ValueError("Packages needs at least one package name")
        bad = [n for n in self.names if not _NAME.match(n)]
        if bad:
            raise ValueError(f"invalid package name(s): {', '.join(map(repr, bad))}")
        if self.state not in STATES:
            raise ValueError(f"Packages state must be one of {', '.join(STATES)}, not {self.state!r}")

    @property
    def ident(self) -> str:
        """Reports name the packages themselves."""
        return f"packages[{','.join(self.names)}]"

    def probe(self, facts: Facts) -> str:
        """One database query (dpkg-query or rpm); apt cache age and candidates only when they matter."""
        if facts.pkg_manager == "apt":
            lines = [argv("dpkg-query", "-W", "-f", "pkg=${Package} ${Status}\\n", *self.names) + " 2>/dev/null"]
            if self.state != "absent" and self.update_cache:
                lines.append(f"set -- {APT_LISTS}/*_Packages*; [ -e \"$1\" ] && echo lists=yes")
                minutes = int(self.cache_valid_minutes)
                recent = f"find {APT_LISTS} {APT_STAMP} -maxdepth 0 -mmin -{minutes} 2>/dev/null"
                lines.append(f"[ -n \"$({recent})\" ] && echo fresh=yes")
            if self.state == "latest":
                lines.append(f"echo {POLICY}; {argv('LC_ALL=C', 'apt-cache', 'policy', *self.names)} 2>/dev/null")
            return "\n".join(lines)
        if facts.pkg_manager in ("dnf", "yum"):
            lines = [argv("rpm", "-q", "--qf", "pkg=%{NAME} installed\\n", *self.names) + " 2>/dev/null"]
            if self.state == "latest":
                lines.append(f"echo {POLICY}; "
                             f"{argv(facts.pkg_manager, '-q', '-C', 'list', '--upgrades', *self.names)} 2>/dev/null")
            return "\n".join(lines)
        return "echo unsupported=yes"

    def reads(self) -> frozenset[str]:
        """The package database and apt's lists."""
        return frozenset({PACKAGES, path(APT_LISTS), path(APT_STAMP)})

    def writes(self) -> frozenset[str]:
        """Everything: a package's scripts may write any file, add accounts and units, start services."""
        return EVERYTHING

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """Compare installed names with the wanted ones; the install command names only what is missing."""
        if facts.pkg_manager not in ("apt", "dnf", "yum"):
            found = facts.pkg_manager or "none"
            return Plan(missing=f"no supported package manager (apt, dnf, yum) on this host: {found}")
        installed = self._installed(probe_output)
        if self.state == "absent":
            todo = [n for n in self.names if _base(n) in installed]
            if not todo:
                return Plan()
            if facts.pkg_manager == "apt":
                cmd = argv(APT_ENV, "apt-get", "remove", "-y", "-q", *todo)
            else:
                cmd = argv(facts.pkg_manager, "remove", "-y", *todo)
            return Plan(changed=True, summary="remove " + ", ".join(todo),
                        diff="".join(f"- {n}\n" for n in todo), commands=[cmd])
        missing = [n for n in self.names if _base(n) not in installed]
        upgrades = self._upgradable(facts, probe_output, installed) if self.state == "latest" else []
        todo = missing + upgrades
        if not todo:
            return Plan()
        commands: list[str] = []
        if facts.pkg_manager == "apt":
            if self.update_cache and not self._apt_cache_fresh(probe_output):
                commands.append(" && ".join((argv("apt-get", "update", "-q"),
                                             argv("mkdir", "-p", APT_STAMP.rsplit("/", 1)[0]),
                                             argv("touch", APT_STAMP))))
            commands.append(argv(APT_ENV, "apt-get", "install", "-y", "-q", "--no-install-recommends",
                                 *APT_KEEP_CONFIG, *todo))
        else:
            commands.append(argv(facts.pkg_manager, "install", "-y", *todo))
        parts = []
        if missing:
            parts.append("install " + ", ".join(missing))
        if upgrades:
            parts.append("upgrade " + ", ".join(upgrades))
        diff = "".join(f"+ {n}\n" for n in missing) + "".join(f"~ {n} (newer version available)\n"
                                                              for n in upgrades)
        return Plan(changed=True, summary="; ".join(parts), diff=diff,
                    commands=commands)

    @staticmethod
    def _installed(output: str) -> set[str]:
        """Names whose database status is installed (dpkg: third status word; rpm: printed at all)."""
        names: set[str] = set()
        for line in output.splitlines():
            if not line.startswith("pkg="):
                continue
            words = line[4:].split()
            if len(words) >= 2 and words[-1] == "installed":
                names.add(words[0])
        return names

    @staticmethod
    def _apt_cache_fresh(output: str) -> bool:
        """Fresh: package lists exist and the lists dir or the update stamp changed recently."""
        lines = output.splitlines()
        return "lists=yes" in lines and "fresh=yes" in lines

    def _upgradable(self, facts: Facts, output: str, installed: set[str]) -> list[str]:
        """Installed names with a newer candidate in the local metadata (no network in a probe)."""
        _, marker, section = output.partition(POLICY)
        if not marker:
            return []
        newer: set[str] = set()
        if facts.pkg_manager == "apt":
            current = ""
            have: dict[str, str] = {}
            for line in section.splitlines():
                if line and not line[0].isspace() and line.endswith(":"):
                    current = _base(line[:-1])
                    continue
                key, _, value = line.strip().partition(":")
                if current and key == "Installed":
                    have[current] = value.strip()
                elif current and key == "Candidate":
                    cand = value.strip()
                    if cand not in ("(none)", "") and have.get(current) not in (cand, None, "(none)"):
                        newer.add(current)
        else:
            for line in section.splitlines():
                words = line.split()
                if len(words) == 3 and "." in words[0]:
                    newer.add(words[0].rsplit(".", 1)[0])
        return [n for n in self.names if _base(n) in installed and _base(n) in newer]
