"""The notebook and the cron script, run the way users run them, against the lab."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hive_nornir.engine.lock import StageLock
from hive_nornir.report.run_report import EXIT_LOCKED, EXIT_OK

pytestmark = pytest.mark.lab
NOTEBOOK = Path(__file__).resolve().parents[2] / "runbooks" / "example.ipynb"


def test_example_notebook_cells_run_in_order(lab, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(lab.root)
    cells = [c["source"] for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    namespace: dict[str, object] = {}
    last = None
    for source in cells:
        *body, tail = source.rstrip().splitlines()
        exec("\n".join(body), namespace)
        try:
            last = eval(tail, namespace)
        except SyntaxError:
            exec(tail, namespace)
    report = namespace["report"]
    assert report.check and "<table>" in report._repr_html_()  # type: ignore[attr-defined]
    assert isinstance(last, dict) and set(last) == set(lab.hosts)  # uptime per host


def test_cron_script_writes_report_and_respects_the_lock(lab) -> None:  # type: ignore[no-untyped-def]
    cmd = [sys.executable, "-m", "hive_nornir.runbooks.cron_setup_hosts", "--root", str(lab.root),
           "--phase", "setup-hosts", "-T", "base,hostsfile"]  # the whole phase is tests/lab/test_setup_hosts_lab.py
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == EXIT_OK, proc.stdout + proc.stderr
    assert "\033[" not in proc.stdout and "setup-hosts on stage private" in proc.stdout
    report = json.loads((lab.context_dir / "reports" / "setup-hosts-private.json").read_text())
    assert report["exit_code"] == EXIT_OK and {h["host"] for h in report["hosts"]} == set(lab.hosts)
    # sshd carries base's sshd settings, so -T base runs it too (README, the setup-hosts phase)
    assert {s["step"] for s in report["steps"]} == {"base", "hostsfile", "sshd"}
    with StageLock(lab.context_dir):
        locked = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert locked.returncode == EXIT_LOCKED and "locked" in locked.stderr
