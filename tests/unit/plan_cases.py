"""Per-primitive fixture tables: facts, probe output and arguments in, the whole plan out (pyinfra-style).

Each test_primitives_*.py keeps a table `CASES` of `Case`s run by one parametrized test through `check_case`:
the primitive plans the canned probe output and the plan must be exactly the wanted one. A failure prints the
wanted plan against the one got as a unified diff, field by field (tests/README.md says how to add a case).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import pytest

from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.base import Plan, Primitive, Upload

DEB, RH = canned("debian"), canned("redhat")


@dataclass(frozen=True)
class Case:
    """One row: `primitive` plans `probe` on a host with `facts`; the rest is the plan wanted.

    commands, uploads, changed, missing and error are always compared, exactly (changed defaults to "commands
    or uploads", missing and error to none); summary and diff only when given.
    """

    id: str
    primitive: Primitive
    probe: str
    facts: Facts = DEB
    commands: Sequence[str] = ()
    uploads: Sequence[Upload] = ()
    changed: bool | None = None
    summary: str | None = None
    diff: str | None = None
    error: str = ""
    missing: str = ""
    notes: str = field(default="", compare=False)  # why the case is there, when the id cannot say it


def on(facts: Iterable[Facts], case: Case) -> list[Case]:
    """The same case on several hosts (e.g. both families), one row each, ids suffixed with the family."""
    return [replace(case, id=f"{case.id}-{f.os_id}{f.os_version}", facts=f) for f in facts]


def ids(cases: Sequence[Case]) -> list[str]:
    """pytest ids: the case ids (duplicates are a table error)."""
    names = [c.id for c in cases]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"duplicate case ids: {dupes}"
    return names


def _block(name: str, text: str) -> list[str]:
    """A multi-line value, one `| line` each, so a diff points at the very line."""
    if not text:
        return [f"{name}: ''"]
    return [f"{name}:", *(f"  | {line}" for line in text.split("\n"))]


def _command_lines(command: str) -> list[str]:
    """A command's lines, long ones broken after `; ` and ` && ` (marked `..`) so a diff shows the very part."""
    out: list[str] = []
    for line in command.split("\n"):
        if len(line) <= 100:
            out.append(line)
            continue
        parts = re.split(r"(?<=; )|(?<= && )", line)
        out += [parts[0], *(f".. {p}" for p in parts[1:])]
    return out


def _upload(up: Upload) -> list[str]:
    head = (f"  - {up.path} mode={up.mode} owner={up.owner} group={up.group} backup={up.backup}"
            f" validate={up.validate!r}")
    try:
        body = up.content.decode()
    except UnicodeDecodeError:
        return [head, f"    content (bytes): {up.content!r}"]
    return [head, *(f"    | {line}" for line in body.split("\n"))]


def wanted_plan(case: Case) -> Plan:
    """The plan the case wants, as a Plan."""
    changed = case.changed if case.changed is not None else bool(case.commands or case.uploads)
    return Plan(changed=changed, summary=case.summary or "", diff=case.diff or "", commands=list(case.commands),
                uploads=list(case.uploads), missing=case.missing, error=case.error)


def render(case: Case, plan: Plan) -> list[str]:
    """`plan` as lines to diff, showing the fields `case` checks."""
    lines = [f"changed: {plan.changed}"]
    if case.summary is not None:
        lines.append(f"summary: {plan.summary!r}")
    if case.diff is not None:
        lines += _block("diff", plan.diff)
    lines.append("commands:" if plan.commands else "commands: []")
    for command in plan.commands:
        first, *rest = _command_lines(command)
        lines += [f"  - {first}", *(f"    {line}" for line in rest)]
    lines.append("uploads:" if plan.uploads else "uploads: []")
    for up in plan.uploads:
        lines += _upload(up)
    lines += [f"missing: {plan.missing!r}", f"error: {plan.error!r}"]
    return lines


def _compared(case: Case, plan: Plan) -> tuple[object, ...]:
    """The fields the case checks, as values (the rendering is only for the failure message)."""
    return (plan.changed, plan.commands, [(u.path, u.content, u.mode, u.owner, u.group, u.validate, u.backup)
                                          for u in plan.uploads], plan.missing, plan.error,
            plan.summary if case.summary is not None else None, plan.diff if case.diff is not None else None)


def check_case(case: Case) -> Plan:
    """Plan the case; fail with wanted against got (unified diff) unless the plan is exactly the wanted one."""
    plan = case.primitive.plan(case.facts, case.probe)
    want = wanted_plan(case)
    if _compared(case, want) != _compared(case, plan):
        wanted, got = render(case, want), render(case, plan)
        diff = "\n".join(difflib.unified_diff(wanted, got, "wanted", "got", lineterm="", n=len(wanted) + len(got)))
        pytest.fail(f"{case.id}: {case.primitive.ident} planned something else (- wanted, + got)\n{diff}",
                    pytrace=False)
    return plan


def assert_text(wanted: str, got: str, what: str = "text") -> None:
    """Two texts equal, else a unified diff of the lines (for file contents, scripts, rendered configs)."""
    if wanted != got:
        diff = "\n".join(difflib.unified_diff(wanted.split("\n"), got.split("\n"), "wanted", "got", lineterm=""))
        pytest.fail(f"{what} differs (- wanted, + got)\n{diff}", pytrace=False)
