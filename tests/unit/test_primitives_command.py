"""Command: guards evaluated by the probe decide "changed"; probes run for real against temp paths."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from plan_cases import DEB, RH, Case, check_case, ids
from probe_runner import run_probe

from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.command import Command

FAMILIES = [DEB, RH]



@pytest.mark.parametrize("facts", FAMILIES)
def test_unguarded_command_always_runs(facts: Facts) -> None:
    cmd = Command("update-ca-certificates")
    plan = cmd.plan(facts, run_probe(cmd, facts))
    assert plan.changed and plan.commands == ["update-ca-certificates"]
    assert plan.summary == "run: update-ca-certificates"


MAKE = Command("make install", creates="/usr/local/bin/tool")
SECRET = Command("mysql -psecret -e 'select 1'", secret=True)

CASES = [
    Case("guard-says-skip", MAKE, "run=no\nwhy=/usr/local/bin/tool exists"),
    Case("guard-says-run", MAKE, "run=yes", commands=["make install"], summary="run: make install",
         diff="$ make install\n"),
    Case("a-guard-that-printed-nothing-is-an-error", MAKE, "",
         error="guard check of command[make install] printed nothing"),
    Case("a-secret-command-runs-but-is-hidden", SECRET, "run=yes", commands=["mysql -psecret -e 'select 1'"],
         summary="run: (secret)", diff="$ (secret)\n"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_plan(case: Case) -> None:
    check_case(case)


@pytest.mark.parametrize("facts", FAMILIES)
def test_real_creates_and_removes(tmp_path: Path, facts: Facts) -> None:
    marker = tmp_path / "done it"
    creates = Command(f"touch '{marker}'", creates=str(marker))
    plan = creates.plan(facts, run_probe(creates, facts))
    assert plan.changed
    subprocess.run(["/bin/sh", "-ec", "\n".join(plan.commands)], check=True)
    out = run_probe(creates, facts)
    assert "why=" in out and not creates.plan(facts, out).changed
    removes = Command(f"rm '{marker}'", removes=str(marker))
    assert removes.plan(facts, run_probe(removes, facts)).changed
    marker.unlink()
    assert not removes.plan(facts, run_probe(removes, facts)).changed


@pytest.mark.parametrize(("unless", "onlyif", "runs"), [
    ("true", None, False), ("false", None, True), (None, "true", True), (None, "false", False),
    ("false", "true", True), ("false", "false", False), ("test 1 = 1 && exit 0", None, False),
])
def test_real_unless_onlyif(unless: str | None, onlyif: str | None, runs: bool) -> None:
    cmd = Command("echo hi", unless=unless, onlyif=onlyif)
    assert cmd.plan(canned(), run_probe(cmd, canned())).changed is runs


def test_real_guard_output_does_not_leak_into_parse() -> None:
    """A check that prints `run=yes` must not fool the plan: its output goes to /dev/null."""
    cmd = Command("echo hi", unless="echo run=yes; true")
    assert not cmd.plan(canned(), run_probe(cmd, canned())).changed


def test_first_skipping_guard_stops_the_rest(tmp_path: Path) -> None:
    witness = tmp_path / "ran"
    cmd = Command("echo hi", creates=str(tmp_path), unless=f"touch '{witness}'")
    run_probe(cmd, canned())
    assert not witness.exists()


def test_secret_command_is_hidden_from_its_ident() -> None:
    assert "-psecret" not in SECRET.ident


def test_empty_command_rejected() -> None:
    with pytest.raises(ValueError):
        Command("  ")


def test_command_from_an_argument_list_is_quoted_by_construction(tmp_path: Path) -> None:
    """Issue 11 item 5: a command given as argv is joined with shlex; nothing in it is read by the shell."""
    target = tmp_path / "a b; touch pwned"
    cmd = Command(args=["touch", str(target)], creates=str(target))
    [line] = cmd.plan(canned(), run_probe(cmd, canned())).commands
    subprocess.run(["/bin/sh", "-ec", line], check=True)
    assert target.exists() and not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert not cmd.plan(canned(), run_probe(cmd, canned())).changed
    with pytest.raises(ValueError, match="needs a command"):
        Command(args=[])
    with pytest.raises(ValueError, match="not both"):
        Command("touch x", args=["touch", "y"])
    with pytest.raises(ValueError, match="argument list"):
        Command(args="touch x")
