"""A non-editable install ships the task library, runbooks, templates, the default site and the lab image files.

CI installs with `pip install -e`, which maps the top-level folders in place; this test builds the real wheel
(pip, setuptools from PyPI in pip's isolated build env) and runs the CLI from it, far from the checkout.
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
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from a copy of the tree (an in-tree build would leave build/ in the checkout)."""
    src = tmp_path_factory.mktemp("src") / "hive_nornir"
    shutil.copytree(REPO, src, ignore=IGNORE)
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = out.glob("hive_nornir-*.whl")
    return whl


def test_wheel_carries_every_part_of_the_product(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for tracked, shipped in (("tasks", "hive_nornir/tasks"), ("runbooks", "hive_nornir/runbooks"),
                             ("templates", "hive_nornir/templates"), ("inventory", "hive_nornir/default_site")):
        files = [p for p in (REPO / tracked).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        assert files
        missing = [str(p.relative_to(REPO)) for p in files
                   if f"{shipped}/{p.relative_to(REPO / tracked).as_posix()}" not in names]
        assert missing == [], f"not in the wheel: {missing}"
    assert {"hive_nornir/lab/image/Dockerfile", "hive_nornir/py.typed"} <= names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "hive_ssh = hive_nornir.transport.ssh:HiveSSH" in text
    assert "HiveInventory = hive_nornir.inventory.plugin:HiveInventory" in text


def test_cli_runs_from_the_wheel_in_any_directory(wheel: Path, tmp_path: Path) -> None:
    """The unpacked wheel first on sys.path, cwd far from the checkout: schema and the embedded site's inventory."""
    site_dir = tmp_path / "site-packages"
    zipfile.ZipFile(wheel).extractall(site_dir)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site_dir)}
    where = subprocess.run([sys.executable, "-c", "import hive_nornir.tasks.base as m; print(m.__file__)"],
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
