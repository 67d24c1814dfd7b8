"""Cron keeps a report per run: timestamped files, a `-latest` link to the newest, only the newest N kept."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hive_nornir.engine.outcome import CHANGED, FAILED, HostOutcome
from hive_nornir.report.archive import archive_report, kept_reports
from hive_nornir.report.run_report import RunReport


def report(status: str) -> RunReport:
    return RunReport("setup-hosts", "private", hosts=["h1"], outcomes=[HostOutcome("h1", "base", status)])


def test_each_run_gets_its_own_file_latest_follows_and_old_ones_go(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    written = [archive_report(report(s), out, keep=2) for s in (CHANGED, CHANGED, FAILED)]
    assert len(set(written)) == 3  # never one file overwritten
    kept = kept_reports(out, "setup-hosts-private")
    assert kept == written[1:]  # the oldest went, the two newest stay, oldest first
    latest = out / "setup-hosts-private-latest.json"
    assert latest.is_symlink() and os.readlink(latest) == written[2].name  # relative link
    assert json.loads(latest.read_text())["exit_code"] == 3
    assert sorted(p.name for p in out.iterdir()) == sorted([*(p.name for p in kept), latest.name])


def test_other_phases_and_stages_are_left_alone(tmp_path: Path) -> None:
    other = RunReport("deploy-services", "private", hosts=["h1"])
    archive_report(other, tmp_path, keep=1)
    (tmp_path / "setup-hosts-private.json").write_text("{}")  # the one file older versions overwrote
    for _ in range(3):
        archive_report(report(CHANGED), tmp_path, keep=1)
    assert len(kept_reports(tmp_path, "deploy-services-private")) == 1
    assert len(kept_reports(tmp_path, "setup-hosts-private")) == 1
    assert (tmp_path / "setup-hosts-private.json").exists()


def test_keep_below_one_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep must be at least 1"):
        archive_report(report(CHANGED), tmp_path / "r", keep=0)
    assert not (tmp_path / "r").exists()
