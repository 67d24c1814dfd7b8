"""The primitive contract: a probe (shell snippet) plus a pure plan, so checks batch into one exec per host."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from hive_nornir.facts import Facts
from hive_nornir.primitives.probes import argv, parse_kv, q
from hive_nornir.primitives.resources import EVERYTHING

__all__ = ["COMMAND_HANDLER", "Plan", "Primitive", "Upload", "argv", "parse_kv", "q", "run_handler"]

COMMAND_HANDLER = "run:"  # a handler name `run:<argv joined with shlex>` runs that command as root


def run_handler(args: Sequence[str]) -> str:
    """Handler name for `with_notify`: run this command (an argument list) once per host when notified."""
    if isinstance(args, str) or not args or not all(isinstance(a, str) and a for a in args):
        raise ValueError(f"a command handler needs a non-empty argument list of non-empty strings, not {args!r}")
    return COMMAND_HANDLER + argv(*args)


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
    writes: frozenset[str] | None = None  # narrower than the primitive's writes(), when the probe tells (resources)


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

    def reads(self) -> frozenset[str]:
        """What the probe looks at (resources.py): a change to any of it before this primitive means a new probe.
        Declaring nothing means everything, so a primitive that says nothing is probed again after any change."""
        return EVERYTHING

    def writes(self) -> frozenset[str]:
        """What applying a plan can change (resources.py); everything unless declared, so an undeclared primitive
        is applied alone and every later probe runs again after it."""
        return EVERYTHING

    def with_notify(self, *handlers: str) -> Primitive:
        """Notify handlers (reload/restart/daemon-reload/run_handler) when this primitive changes the host."""
        self.notify = tuple(handlers)
        return self

    def on_change(self, args: Sequence[str]) -> Primitive:
        """Run this command (an argument list, e.g. `["sysctl", "-p", path]`) once per host, with the other
        handlers, when this primitive changed the host: no extra ensure, no extra round trip when nothing changed."""
        self.notify = (*self.notify, run_handler(args))
        return self

    def __repr__(self) -> str:
        return f"<{self.ident}>"
