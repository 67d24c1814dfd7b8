"""The primitive contract: a probe (shell snippet) plus a pure plan, so checks batch into one exec per host."""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from hive_nornir.facts import Facts


@dataclass(frozen=True)
class Upload:
    """A file the apply phase installs atomically: staged in the target dir, validated, backed up, renamed."""

    path: str
    content: bytes
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    validate: str | None = None  # command with %s for the candidate path; non-zero rejects it
    backup: bool = True


@dataclass
class Plan:
    """What a primitive would do on one host: nothing, or commands and uploads, with a readable diff."""

    changed: bool = False
    summary: str = ""  # one line a human reads in the report, e.g. "install nginx, curl"
    diff: str = ""
    commands: list[str] = field(default_factory=list)  # run as root, in order, under `set -e`
    uploads: list[Upload] = field(default_factory=list)  # installed before the commands run
    missing: str = ""  # a prerequisite is absent (unit/group not there yet); check mode may assume it
    error: str = ""  # the host's state cannot be handled (file too large, broken markers): always a failure


class Primitive(ABC):
    """An idempotent building block; subclasses stay pure: facts and probe output in, Plan out."""

    kind: ClassVar[str] = "primitive"
    notify: tuple[str, ...] = ()
    secret: bool = False  # hide content from diffs and reports

    @property
    @abstractmethod
    def ident(self) -> str:
        """Stable short name for reports, e.g. `file[/etc/hosts]`."""

    @abstractmethod
    def probe(self, facts: Facts) -> str:
        """Shell snippet (run as root) that prints the current state; must not change the host."""

    @abstractmethod
    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """Compare current state with the desired state; never touches the host."""

    def with_notify(self, *handlers: str) -> Primitive:
        """Notify handlers (reload/restart) when this primitive changes the host."""
        self.notify = tuple(handlers)
        return self

    def __repr__(self) -> str:
        return f"<{self.ident}>"


def q(value: str) -> str:
    """Shell-quote one value; every probe and command goes through this, never string pasting."""
    return shlex.quote(value)


def parse_kv(text: str) -> dict[str, str]:
    """Parse `key=value` lines that probes print into a dict (last one wins)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value
    return out
