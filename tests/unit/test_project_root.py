"""The project root is found the way git finds its repository; the embedded lab site only when none is found,
announced on stderr every time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hive_nornir.api import Hive
from hive_nornir.inventory import HiveInventory
from hive_nornir.site import SiteError
from hive_nornir.site.loader import default_site_dir
from hive_nornir.site.project import find_project

SITE = "plugin: hive_inventory\nname: own4\nstages:\n  private: {provider: docker, cidr: 10.123.0.0/24}\n"
NOTICE = "hive_nornir: using the embedded lab site "
NOTEBOOK = Path(__file__).resolve().parents[2] / "hive_nornir" / "runbooks" / "example.ipynb"


def project(root: Path) -> Path:
    """A user's project: inventory/site.yml, a runbooks/ folder, a deeper folder."""
    (root / "inventory").mkdir(parents=True)
    (root / "inventory" / "site.yml").write_text(SITE)
    (root / "runbooks" / "deep").mkdir(parents=True)
    return root


def test_hive_from_a_subdirectory_uses_the_projects_site_and_state(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root = project(tmp_path / "p")
    for start in (root, root / "runbooks", root / "runbooks" / "deep", root / "inventory"):
        hive = Hive(root=start)
        assert (hive.root, hive.site_path, hive.context_dir) == (
            root, root / "inventory" / "site.yml", root / ".hive" / "private"), start
        assert hive.site.name == "own4"
    assert NOTICE not in capsys.readouterr().err


def test_cli_from_a_subdirectory_uses_the_project(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    proc = subprocess.run([sys.executable, "-m", "hive_nornir", "inventory"], cwd=root / "runbooks",
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [ln.split()[0] for ln in proc.stdout.splitlines()[1:]] == [f"p-hive{i}.own4" for i in range(4)]
    assert NOTICE not in proc.stderr
    assert not (root / "runbooks" / ".hive").exists()


def test_nornir_plugin_from_a_subdirectory_uses_the_project(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    inv = HiveInventory(root_dir=str(root / "runbooks" / "deep")).load()
    assert next(iter(inv.hosts)) == "p-hive0.own4"
    extras = inv.defaults.connection_options["hive_ssh"].extras
    assert extras is not None and extras["known_hosts"] == str(root / ".hive" / "private" / "known_hosts")


def test_the_notebook_executed_where_it_lives_uses_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """runbooks/example.ipynb's first cell, run in <project>/runbooks as Jupyter does, loads the project."""
    root = project(tmp_path / "p")
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    source = "".join(cells[0]["source"])
    assert "Hive(" in source
    monkeypatch.chdir(root / "runbooks")
    scope: dict[str, object] = {}
    exec(compile(source, str(NOTEBOOK), "exec"), scope)  # the notebook's own cell
    hive = scope["hive"]
    assert isinstance(hive, Hive)
    assert (hive.root, hive.site.name, hive.context_dir) == (root, "own4", root / ".hive" / "private")
    assert NOTICE not in capsys.readouterr().err


def test_no_project_anywhere_uses_the_embedded_site_and_says_so_every_time(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = tmp_path / "empty"
    start.mkdir()
    for _ in range(2):
        hive = Hive(root=start)
        assert (hive.root, hive.site_path) == (start, default_site_dir() / "hive.yml")
        err = capsys.readouterr().err
        assert err.startswith(NOTICE) and str(start) in err and str(start / ".hive") in err


def test_cli_announces_the_embedded_site(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "hive_nornir", "inventory"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(NOTICE) and "p-hive0.hivelab" in proc.stdout


def test_a_broken_inventory_in_the_start_directory_is_an_error(tmp_path: Path) -> None:
    project(tmp_path / "p")
    sub = tmp_path / "p" / "runbooks"
    (sub / "inventory").mkdir()
    (sub / "inventory" / "hive.yml").write_text(SITE.replace("hive_inventory", "hive_inventry"))
    with pytest.raises(SiteError, match="no site file with 'plugin: hive_inventory'"):
        find_project(sub)


def test_a_foreign_inventory_above_is_skipped_and_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An Ansible inventory/ in a parent directory is no hive project: walk past it (and say so)."""
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts.yml").write_text("plugin: constructed\n")
    start = tmp_path / "work"
    start.mkdir()
    hive = Hive(root=start)
    assert hive.root == start
    err = capsys.readouterr().err
    assert err.startswith(NOTICE) and f"skipped: {tmp_path / 'inventory'}" in err


def test_explicit_site_file_belongs_to_the_project_above_its_inventory(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path / "p")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    hive = Hive(site_file=root / "inventory" / "site.yml")
    assert (hive.root, hive.context_dir) == (root, root / ".hive" / "private")
