"""A non-editable install ships the task library, runbooks, templates, the default site and the lab image files.

tasks/, runbooks/, templates/ and inventory/ at the top level are symlinks to real subpackages of hive_nornir, so
the wheel, an editable install and a source tree on sys.path all see the same modules (docs/architecture.md).
These tests build the real wheel (pip, setuptools from PyPI in pip's isolated build env) and run it far from the
checkout and inside a project directory, and prove mypy checks calls into hive_nornir.tasks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IGNORE = shutil.ignore_patterns(".venv", ".git", ".hive", "build", "dist", "*.egg-info", "__pycache__",
                                ".pytest_cache", ".mypy_cache", ".ruff_cache", "results*.json")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Build the wheel from a copy of the tree (an in-tree build would leave build/ in the checkout).

    -v: pip shows the build backend's own output (setuptools' warnings) only when asked to.
    """
    src = tmp_path_factory.mktemp("src") / "hive_nornir"
    shutil.copytree(REPO, src, ignore=IGNORE, symlinks=True)  # as a git clone has them
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(out), str(src)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = out.glob("hive_nornir-*.whl")
    return whl, r.stdout + r.stderr


@pytest.fixture(scope="module")
def wheel(built: tuple[Path, str]) -> Path:
    return built[0]


def test_build_prints_no_deprecation_warning(built: tuple[Path, str]) -> None:
    """setuptools warns that the license table stops working in 2027; the metadata is the current form."""
    _, log = built
    warnings = [line for line in log.splitlines() if "Deprecat" in line or "deprecated" in line]
    assert warnings == [], "\n".join(warnings)
    meta = zipfile.ZipFile(built[0])
    text = meta.read(next(n for n in meta.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in text and "License-File: LICENSE" in text
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in meta.namelist())


def test_wheel_carries_every_part_of_the_product(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for tracked, shipped in (("tasks", "hive_nornir/tasks"), ("runbooks", "hive_nornir/runbooks"),
                             ("templates", "hive_nornir/templates"), ("inventory", "hive_nornir/default_site")):
        assert (REPO / tracked).is_symlink(), f"{tracked}/ must link into the package"
        files = [p for p in (REPO / tracked).resolve().rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        assert files
        missing = [str(p) for p in files
                   if f"{shipped}/{p.relative_to((REPO / tracked).resolve()).as_posix()}" not in names]
        assert missing == [], f"not in the wheel: {missing}"
    assert {"hive_nornir/lab/image/Dockerfile", "hive_nornir/py.typed"} <= names
    payloads = {f"hive_nornir/payloads/{p.name}" for p in (REPO / "hive_nornir" / "payloads").iterdir() if p.is_file()}
    assert payloads - names == set(), "host-side programs missing from the wheel"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "hive_ssh = hive_nornir.transport.plugin:HiveSSH" in text
    assert "HiveInventory = hive_nornir.inventory.plugin:HiveInventory" in text
    assert ("[hive_nornir.phases]\nbuild-networks = hive_nornir.runbooks.services:BUILD_NETWORKS\n"
            "build-volumes = hive_nornir.runbooks.services:BUILD_VOLUMES\n"
            "cluster = hive_nornir.runbooks.cluster:RUNBOOK\n"
            "deploy-services = hive_nornir.runbooks.services:DEPLOY_SERVICES\n"
            "setup-hosts = hive_nornir.runbooks.setup_hosts:RUNBOOK\n"
            "vip-failover = hive_nornir.runbooks.cluster:FAILOVER") in text
    assert "[hive_nornir.providers]\ndocker = hive_nornir.providers.docker\nprepared = hive_nornir.providers.prepared" \
        in text


def test_cli_runs_from_the_wheel_in_any_directory(wheel: Path, tmp_path: Path) -> None:
    """The unpacked wheel first on sys.path, cwd far from the checkout: schema and the embedded site's inventory."""
    site_dir = tmp_path / "site-packages"
    zipfile.ZipFile(wheel).extractall(site_dir)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site_dir)}
    where = subprocess.run([sys.executable, "-c", "import hive_nornir.tasks.host.base as m; print(m.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(site_dir)), where.stdout + where.stderr
    schema = subprocess.run([sys.executable, "-m", "hive_nornir", "schema"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=60)
    assert schema.returncode == 0, schema.stderr
    assert "stages" in json.loads(schema.stdout)["properties"]
    inv = subprocess.run([sys.executable, "-m", "hive_nornir", "inventory", "--json"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=60)
    assert inv.returncode == 0, inv.stderr
    assert "p-hive0.hivelab" in inv.stdout


def test_installed_wheel_runs_inside_the_project_directory(wheel: Path, tmp_path: Path) -> None:
    """cwd = a checkout (its hive_nornir/ shadows the installed one, as `python -m` puts cwd first): runbooks,
    tasks and templates still import (with the old package-dir mapping: ModuleNotFoundError hive_nornir.runbooks)."""
    site_dir = tmp_path / "site-packages"
    zipfile.ZipFile(wheel).extractall(site_dir)
    project = tmp_path / "project"
    shutil.copytree(REPO, project, ignore=IGNORE, symlinks=True)
    env = {**os.environ, "PYTHONPATH": str(site_dir)}
    code = ("import hive_nornir, hive_nornir.phases as p; rb = p.load_runbook('setup-hosts'); "
            "from hive_nornir.primitives.file import template_env; "
            "template_env().get_template('logs/rsyslog-client.conf.j2'); "
            "print(hive_nornir.__file__, len(rb.steps))")
    r = subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    where, steps = r.stdout.split()
    assert where.startswith(str(project)), "the checkout in cwd must be the one imported"
    assert int(steps) >= 20
    inv = subprocess.run([sys.executable, "-m", "hive_nornir", "inventory", "--json"], cwd=project, env=env,
                         capture_output=True, text=True, timeout=60)
    assert inv.returncode == 0, inv.stderr
    assert "p-hive0.hivelab" in inv.stdout


def test_mypy_checks_calls_into_the_task_library(tmp_path: Path) -> None:
    """A task called with a wrong argument count is a mypy error (it type-checked as Any before the move)."""
    bad = tmp_path / "bad_runbook.py"
    bad.write_text("from hive_nornir.tasks.host.hostsfile import hostsfile\n\nhostsfile(1, 2, 3)\n")
    good = tmp_path / "good_runbook.py"
    good.write_text("from hive_nornir.engine.context import HostContext\n"
                    "from hive_nornir.tasks.host.hostsfile import hostsfile\n\n\n"
                    "def run(ctx: HostContext) -> None:\n    hostsfile(ctx)\n")
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"),
           "--cache-dir", str(tmp_path / "cache"), "--no-error-summary"]
    r = subprocess.run([*cmd, str(bad)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "bad_runbook.py:3: error: Too many arguments for \"hostsfile\"" in r.stdout, r.stdout
    ok = subprocess.run([*cmd, str(good)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
