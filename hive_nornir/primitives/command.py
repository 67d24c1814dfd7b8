"""Command: the escape hatch; its guards are evaluated in the probe so "changed" still means it ran."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Plan, Primitive
from hive_nornir.primitives.probes import argv, parse_kv, q
from hive_nornir.primitives.resources import EVERYTHING, path


@dataclass(eq=False)
class Command(Primitive):
    """Run a shell command unless its guards say the work is done; without guards it always runs.

    `args` is the command as an argument list (joined with shlex into `cmd`: nothing is pasted); `cmd` is shell
    text, for pipelines and scripts whose variable parts were themselves built with `argv()`.
    """

    cmd: str = ""
    creates: str | None = None  # skip when this path exists
    removes: str | None = None  # skip when this path does not exist
    unless: str | None = None  # skip when this read-only check succeeds
    onlyif: str | None = None  # skip when this read-only check fails
    secret: bool = False  # the command line holds something not to show in reports
    args: Sequence[str] = ()
    kind = "command"

    def __post_init__(self) -> None:
        """An empty command would be reported as changed while doing nothing."""
        if self.args and self.cmd:
            raise ValueError("Command takes `cmd` (shell text) or `args` (an argument list), not both")
        if isinstance(self.args, str):
            raise ValueError(f"Command args must be an argument list, not the string {self.args!r}")
        if self.args:
            self.cmd = argv(*self.args)
        if not self.cmd.strip():
            raise ValueError("Command needs a command")

    @property
    def ident(self) -> str:
        """Reports name the command (shortened; hidden when secret)."""
        text = "(secret)" if self.secret else " ".join(self.cmd.split())
        return f"command[{text[:60]}{'...' if len(text) > 60 else ''}]"

    @property
    def guarded(self) -> bool:
        """Whether any guard can make this a no-op."""
        return any(g is not None for g in (self.creates, self.removes, self.unless, self.onlyif))

    def probe(self, facts: Facts) -> str:
        """Cheapest guards first; the first that says "done" stops the rest. Checks run read-only as root."""
        if not self.guarded:
            return "echo run=yes"
        checks: list[tuple[str, str]] = []  # (shell condition meaning "skip", reason)
        if self.creates is not None:
            checks.append((argv("test", "-e", self.creates), f"{self.creates} exists"))
        if self.removes is not None:
            checks.append((argv("test", "!", "-e", self.removes), f"{self.removes} does not exist"))
        if self.unless is not None:
            checks.append((f"( {self.unless}\n) >/dev/null 2>&1 </dev/null", "unless check succeeded"))
        if self.onlyif is not None:
            checks.append((f"! ( {self.onlyif}\n) >/dev/null 2>&1 </dev/null", "onlyif check failed"))
        script = ""
        for condition, reason in checks:
            script += f"if {condition}; then echo run=no; echo {q('why=' + reason)}; el"
        return script + "se echo run=yes; fi"

    def reads(self) -> frozenset[str]:
        """Nothing without guards, the paths of `creates`/`removes`, anything with `unless`/`onlyif`."""
        if self.unless is not None or self.onlyif is not None:
            return EVERYTHING
        return frozenset(path(p) for p in (self.creates, self.removes) if p is not None)

    def writes(self) -> frozenset[str]:
        """Anything: a command is opaque."""
        return EVERYTHING

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """Changed exactly when the guards say the command would run."""
        kv = parse_kv(probe_output)
        run = kv.get("run")
        if run == "no":
            return Plan()
        if run != "yes":
            return Plan(error=f"guard check of {self.ident} printed nothing")
        shown = "(secret)" if self.secret else self.cmd
        return Plan(changed=True, summary=f"run: {shown}", diff=f"$ {shown}\n", commands=[self.cmd])
