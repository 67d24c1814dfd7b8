"""A user's project against a real lab host: the README's template and runbook as written there, a project
template replacing a packaged one, the runbook as a third-party phase of the CLI, and `facts` as a user sees it.

Lab: site cli1, 10.150.0.0/24, one host (module scoped).
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Lab, start_lab, stop_lab

from hive_nornir.api import Hive
from hive_nornir.primitives.file import Template
from hive_nornir.primitives.templates import package_templates

pytestmark = pytest.mark.lab
README = Path(__file__).resolve().parents[2] / "README.md"
SHADOWED = "repository/backup-timer.j2"  # a template hive_nornir ships (backup-tools' timer unit)


def readme_files() -> dict[str, str]:
    """Every fenced block of the README whose first line names its file (`# file: X` or `{# file: X #}`)."""
    found = {}
    for block in re.findall(r"^```[a-z]*\n(.*?)^```$", README.read_text(), re.M | re.S):
        named = re.match(r"^(?:#|\{#) file: (\S+)", block)
        if named:
            found[named.group(1)] = block  # the naming comment too: a Jinja comment renders as nothing
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A one-host stage whose root is the user's project: the README's files written into it."""
    lab = start_lab(tmp_path_factory.mktemp("cli1"), "cli1", "10.150.0.0/24", 1, separate=False)
    try:
        for rel, text in readme_files().items():
            (lab.root / rel).parent.mkdir(parents=True, exist_ok=True)
            (lab.root / rel).write_text(text)
        yield lab
    finally:
        stop_lab(lab)


def host_file(lab: Lab, path: str) -> str:
    rc, out = lab.docker_exec(lab.hosts[0], f"cat {path}")
    assert rc == 0, out
    return out


def test_readme_template_and_runbook_run_as_written(project: Lab) -> None:
    files = readme_files()
    assert {"templates/motd.j2", "motd.py"} <= set(files), files.keys()
    host = project.hosts[0]
    before = host_file(project, "/etc/motd")
    check = subprocess.run([sys.executable, "motd.py", "-C"], cwd=project.root, capture_output=True, text=True,
                           timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "(check mode: nothing changed): 1 host(s), 1 change(s)" in check.stdout, check.stdout
    assert host_file(project, "/etc/motd") == before
    run = subprocess.run([sys.executable, "motd.py"], cwd=project.root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert host_file(project, "/etc/motd") == f"Welcome to {host}, a server of cli1.\n"
    again = subprocess.run([sys.executable, "motd.py"], cwd=project.root, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0 and "1 host(s), 0 change(s)" in again.stdout, again.stdout + again.stderr


def test_the_runbook_as_a_third_party_phase_of_the_cli(project: Lab, tmp_path: Path) -> None:
    """The README's entry point, installed as a distribution: `python -m hive_nornir run motd` finds it."""
    site = tmp_path / "site-packages"
    info = site / "cli1_site-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cli1-site\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[hive_nornir.phases]\nmotd = motd:RUNBOOK\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(project.root)])}
    listed = subprocess.run([sys.executable, "-m", "hive_nornir", "run", "motd", "--list-steps"], cwd=project.root,
                            env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "motd  servers  TAGS: [motd]  1 host" in listed.stdout, listed.stderr
    (project.root / "templates" / "motd.j2").write_text("{{ host_name }} of {{ site }}, changed by the CLI\n")
    proc = subprocess.run([sys.executable, "-m", "hive_nornir", "run", "motd", "--json", "-"], cwd=project.root,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["phase"] == "motd" and [len(s["changes"]) for s in doc["steps"]] == [1], doc["steps"]
    assert host_file(project, "/etc/motd") == f"{project.hosts[0]} of cli1, changed by the CLI\n"


def test_a_project_template_replaces_the_packaged_one_of_the_same_name(project: Lab) -> None:
    packaged = (package_templates() / SHADOWED).read_text()
    ours = project.root / "templates" / SHADOWED
    ours.parent.mkdir(parents=True, exist_ok=True)
    ours.write_text("# the project's own timer for {{ unit }}\n")
    assert "the project's own" not in packaged
    report = Hive(project.root).run_task([Template("/etc/hn-cli1-timer", SHADOWED, {"unit": "x"})])
    assert report.exit_code == 0, report.text()
    assert host_file(project, "/etc/hn-cli1-timer") == "# the project's own timer for x\n"


def test_facts_as_a_table_on_a_terminal_columns_on_a_pipe_and_json(project: Lab) -> None:
    base = [sys.executable, "-m", "hive_nornir", "-r", str(project.root), "facts"]
    as_json = subprocess.run([*base, "--json"], capture_output=True, text=True, timeout=120)
    assert as_json.returncode == 0, as_json.stderr
    (host,) = project.hosts
    facts = json.loads(as_json.stdout)[host]
    rc, os_release = project.docker_exec(host, ". /etc/os-release; echo $PRETTY_NAME")
    assert rc == 0, os_release
    assert facts["os_pretty"] == os_release.strip() and facts["init"] == "systemd"
    piped = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    header, row = piped.stdout.splitlines()
    assert header.split()[:3] == ["host", "os_pretty", "os_family"]
    assert row.startswith(f"{host}  {facts['os_pretty']}") and facts["os_family"] in row.split()
    table = on_a_terminal(base)
    assert host in table and facts["os_pretty"] in table and "┃" in table and "facts, stage private" in table


def on_a_terminal(argv: list[str]) -> str:
    """Run argv with stdout on a pseudo-terminal (as a person at a shell) and return what it drew there."""
    main, other = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "250", "NO_COLOR": "1"}
    proc = subprocess.Popen(argv, stdout=other, stderr=subprocess.PIPE, env=env)
    os.close(other)
    out = b""
    while True:
        ready, _, _ = select.select([main], [], [], 120)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    os.close(main)
    return out.decode(errors="replace")
