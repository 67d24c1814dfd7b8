"""Reports kept per run: a timestamped JSON file each, a stable `-latest` link to the newest, the oldest pruned."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from hive_nornir.report.run_report import RunReport

DEFAULT_KEEP = 48  # a day of half-hourly cron runs


def report_stem(report: RunReport) -> str:
    """`setup-hosts-private`: what every file of one phase on one stage starts with."""
    return f"{report.phase}-{report.stage}".replace(" ", "")


def archive_report(report: RunReport, out_dir: Path, keep: int = DEFAULT_KEEP) -> Path:
    """Write `<stem>-<UTC time>.json`, point `<stem>-latest.json` at it, keep only the `keep` newest; the path."""
    if keep < 1:
        raise ValueError("keep must be at least 1: the report just written is always kept")
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = report_stem(report)
    path = _new_file(out_dir, stem, report.to_json() + "\n")
    latest = out_dir / f"{stem}-latest.json"
    tmp = out_dir / f".{stem}-latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(path.name)  # relative: the directory can be moved or mounted elsewhere
    tmp.replace(latest)  # atomic: a reader sees the old report or the new one, never none
    for old in kept_reports(out_dir, stem)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def kept_reports(out_dir: Path, stem: str) -> list[Path]:
    """The timestamped reports of one phase and stage, oldest first (the names sort by time)."""
    pattern = re.compile(re.escape(stem) + r"-\d{8}T\d{6}\.\d{3}Z\.json")
    return sorted(p for p in out_dir.iterdir() if pattern.fullmatch(p.name))


def _new_file(out_dir: Path, stem: str, text: str) -> Path:
    """A file no other run wrote: the name has the millisecond, and an existing one is never overwritten."""
    for _ in range(1000):
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
        path = out_dir / f"{stem}-{stamp}.json"
        try:
            with path.open("x") as f:
                f.write(text)
            return path
        except FileExistsError:
            time.sleep(0.001)
    raise FileExistsError(f"{out_dir}: no free report name for {stem} after 1000 tries")
