"""CLI bad input: every mistake exits 2 with a message naming what is wrong, before any host is contacted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hive_nornir.cli import main
from hive_nornir.engine.errors import BadInput
from hive_nornir.engine.journal import RunJournal
from hive_nornir.engine.lock import StageLock
from hive_nornir.report.run_report import EXIT_BAD_INPUT, EXIT_CODES, EXIT_FAILED, EXIT_LOCKED


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hive_nornir", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_lab_stage_without_state_is_refused_before_any_connection(tmp_path: Path) -> None:
    proc = run_cli("run", "setup-hosts", cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT
    assert "run build-infra" in proc.stderr and "p-hive0" in proc.stderr


def test_bad_flag_and_unknown_phase_exit_2(tmp_path: Path) -> None:
    assert run_cli("run", "setup-hosts", "--bogus", cwd=tmp_path).returncode == EXIT_BAD_INPUT
    proc = run_cli("run", "deploy-everything", cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT and "invalid choice" in proc.stderr


def test_bad_site_names_file_line_and_key(tmp_path: Path) -> None:
    inv = tmp_path / "inventory"
    inv.mkdir()
    (inv / "hive.yml").write_text(
        "plugin: hive_inventory\nname: t\nstages:\n  private:\n    provider: docker\n    cidr: 10.0.0.0/33\n"
        "    number_of_hosts: 2\n    instance_typo: x\n"
    )
    proc = run_cli("inventory", cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT
    assert f"{inv / 'hive.yml'}:6: stages.private.cidr" in proc.stderr
    assert "instance_typo" in proc.stderr  # several errors at once


def test_undefined_stage_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "inventory"
    inv.mkdir()
    (inv / "hive.yml").write_text("plugin: hive_inventory\nname: t\nstages:\n  private:\n    provider: docker\n"
                                  "    cidr: 10.0.0.0/24\n")
    assert main(["-r", str(tmp_path), "-s", "staging", "inventory"]) == EXIT_BAD_INPUT
    assert "stage 'staging' is not defined" in capsys.readouterr().err


def test_exit_codes_are_listed(tmp_path: Path) -> None:
    proc = run_cli("exit-codes", cwd=tmp_path)
    assert proc.returncode == 0
    for code in EXIT_CODES:
        assert f"{code}  " in proc.stdout


def test_inventory_export_loads_in_plain_nornir(tmp_path: Path) -> None:
    from nornir import InitNornir

    out = tmp_path / "exported"
    proc = run_cli("inventory", "--export", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    nr = InitNornir(inventory={"plugin": "SimpleInventory", "options": {
        "host_file": str(out / "hosts.yaml"), "group_file": str(out / "groups.yaml"),
        "defaults_file": str(out / "defaults.yaml")}}, logging={"enabled": False})
    assert "p-hive0.hivelab" in nr.inventory.hosts and "hives" in nr.inventory.hosts["p-hive0.hivelab"].groups


# -- machine-readable output and exit codes (no host is contacted by any of these) ---------------------------
LAB_HOSTS = ("p-hive0.hivelab", "p-hive1.hivelab", "p-hive2.hivelab", "p-hive3.hivelab")


def write_state(root: Path, text: str | None = None) -> Path:
    """A docker-stage state.json; the port is never dialled: every test here stops before any connection."""
    ctx = root / ".hive" / "private"
    ctx.mkdir(parents=True, exist_ok=True)
    path = ctx / "state.json"
    path.write_text(text if text is not None else json.dumps(
        {"provider": "docker", "hosts": {h: {"address": "127.0.0.1", "port": 9, "user": "root"} for h in LAB_HOSTS}}))
    return path


def test_json_dash_stdout_is_only_the_json_document(tmp_path: Path) -> None:
    proc = run_cli("run", "build-infra", "-C", "--json", "-", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # nothing else on stdout
    assert doc["exit_code"] == 0 and doc["check"] and {h["host"] for h in doc["hosts"]} == set(LAB_HOSTS)
    assert "== build-infra" in proc.stderr and "build-infra on stage private" in proc.stderr
    assert "\x1b[" not in proc.stdout + proc.stderr


def test_json_dash_on_bad_input_is_still_json(tmp_path: Path) -> None:
    write_state(tmp_path)
    proc = run_cli("run", "setup-hosts", "-T", "nosuchtag", "--json", "-", cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == EXIT_BAD_INPUT and "nosuchtag" in doc["error"] and doc["steps"] == []
    assert "error: -T/--tags: unknown tag(s) nosuchtag" in proc.stderr
    bad_flag = run_cli("run", "setup-hosts", "--json", "-", "--bogus", cwd=tmp_path)
    assert bad_flag.returncode == EXIT_BAD_INPUT and json.loads(bad_flag.stdout)["exit_code"] == EXIT_BAD_INPUT


def test_json_file_records_the_lock_error(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    with StageLock(tmp_path / ".hive" / "private"):
        proc = run_cli("run", "build-infra", "-C", "--json", str(out), cwd=tmp_path)
    assert proc.returncode == EXIT_LOCKED and "locked" in proc.stderr
    doc = json.loads(out.read_text())
    assert doc["exit_code"] == EXIT_LOCKED and "locked" in doc["error"] and doc["phase"] == "build-infra"


def test_broken_state_json_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    state = write_state(tmp_path, "{not json")
    out = tmp_path / "report.json"
    for args in (("run", "setup-hosts", "--json", str(out)), ("run", "build-infra"), ("inventory",)):
        proc = run_cli(*args, cwd=tmp_path)
        assert proc.returncode == EXIT_BAD_INPUT, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines() == [f"error: {state}: cannot read provider state: "
                                                    "Expecting property name enclosed in double quotes: "
                                                    "line 1 column 2 (char 1)"]
    assert str(state) in json.loads(out.read_text())["error"]


def test_provider_error_on_destroy_is_a_failure_with_one_line(tmp_path: Path) -> None:
    """The docker engine is pointed at a socket that does not exist: the real provider's real error path."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    proc = subprocess.run([sys.executable, "-m", "hive_nornir", "run", "build-infra", "-D", "--json", "-"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == EXIT_FAILED, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "docker engine not reachable" in errors[0], proc.stderr
    assert json.loads(proc.stdout)["exit_code"] == EXIT_FAILED


def test_resume_needs_a_recorded_failure_with_the_same_selection(tmp_path: Path) -> None:
    write_state(tmp_path)
    proc = run_cli("run", "setup-hosts", "--resume", cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT and "no earlier setup-hosts run is recorded" in proc.stderr
    journal = RunJournal(tmp_path / ".hive" / "private", "setup-hosts")
    journal.start("setup-hosts", "private", False, ["hostsfile"], limit=["p-hive1.hivelab"], tags=["hostsfile"])
    journal.step_done("hostsfile", ["p-hive1.hivelab"])
    journal.finish()
    proc = run_cli("run", "setup-hosts", "--resume", cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT
    assert "used -l p-hive1.hivelab -T hostsfile, this one asks for no -l/-T" in proc.stderr
    proc = run_cli("run", "setup-hosts", "--resume", "-l", "p-hive2", "-T", "hostsfile", cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT and "this one asks for -l p-hive2.hivelab -T hostsfile" in proc.stderr
    # a check run never overwrites the journal a real run left (it dials 127.0.0.1:9 and finds nothing there)
    proc = run_cli("run", "setup-hosts", "-C", "-l", "p-hive2", "-T", "hostsfile", cwd=tmp_path)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert json.loads(journal.path.read_text())["limit"] == ["p-hive1.hivelab"]


def test_resume_point_outside_the_selected_steps_is_refused(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path, "setup-hosts")
    journal.start("setup-hosts", "private", False, ["a", "b"])
    journal.step_done("a", ["h1"])
    with pytest.raises(BadInput, match="stopped at step 'a', which is not among the selected steps"):
        journal.resume_from(["b", "c"], None, None)
    assert journal.resume_from(["a", "b"], None, None) == "a"
    journal.start("setup-hosts", "private", False, ["a"])
    journal.step_done("a", [])
    journal.finish()
    with pytest.raises(BadInput, match="nothing to resume"):
        journal.resume_from(["a"], None, None)
