"""CLI bad input: every mistake exits 2 with a message naming what is wrong, before any host is contacted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hive_nornir.cli import main
from hive_nornir.report.run_report import EXIT_BAD_INPUT, EXIT_CODES


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
