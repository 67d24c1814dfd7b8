"""Progress lines: ANSI colour only on a terminal; pipes, files and NO_COLOR get plain text."""

from __future__ import annotations

import io
import os
import re
from types import SimpleNamespace
from typing import Any

import pytest

from hive_nornir.api import default_progress
from hive_nornir.engine.outcome import CHANGED, FAILED, Change, HostOutcome
from hive_nornir.report.progress import STATUS_MARK, Progress


def feed(progress: Progress) -> None:
    """One step header, a changed host and a failed host with a two-line reason."""
    task: Any = SimpleNamespace(name="base")
    progress.task_started(task)
    ok = HostOutcome("p-hive0.x", "base", CHANGED, [Change("file[/etc/x]", "write /etc/x", "+x\n")], seconds=0.5)
    bad = HostOutcome("p-hive1.x", "base", FAILED, error="`apt-get`: exit 100\nE: broken", seconds=1.0)
    for outcome in (ok, bad):
        progress.task_instance_completed(task, SimpleNamespace(name=outcome.host),  # type: ignore[arg-type]
                                         [SimpleNamespace(result=outcome)])  # type: ignore[arg-type]


def test_terminal_mode_paints_status_words() -> None:
    out = io.StringIO()
    feed(Progress(out, colour=True, show_diff=True))
    text = out.getvalue()
    assert "\x1b[33mchanged\x1b[0m" in text and "\x1b[31mfailed\x1b[0m" in text
    assert "== base" in text and "write /etc/x" in text and "+x" in text


def test_plain_mode_has_no_escape_codes_and_one_reason_line() -> None:
    out = io.StringIO()
    feed(Progress(out, colour=False))
    text = out.getvalue()
    assert "\x1b[" not in text
    assert "p-hive1.x" in text and "`apt-get`: exit 100" in text and "E: broken" not in text


def test_quiet_prints_nothing() -> None:
    out = io.StringIO()
    feed(Progress(out, colour=False, quiet=True))
    assert out.getvalue() == ""


def test_default_progress_colours_a_tty_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    master, slave = os.openpty()
    read_end, write_end = os.pipe()
    with open(slave, "w") as tty, open(write_end, "w") as pipe:
        assert default_progress(tty).colour is True
        assert default_progress(pipe).colour is False
        monkeypatch.setenv("NO_COLOR", "1")
        assert default_progress(tty).colour is False
    os.close(master)
    os.close(read_end)


# -- the live status line (a terminal): which hosts are still on the step, and for how long ----------------------
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LONG = "write /etc/" + "very-long-name/" * 12 + "file.conf"


def screen_lines(raw: str) -> list[str]:
    """What stays readable of a terminal stream: cursor and colour codes dropped, \\r-overwritten frames split."""
    return [part for line in ESCAPES.sub("", raw).replace("\r\n", "\n").split("\n")
            for part in line.split("\r") if part.strip()]


def test_status_line_names_the_hosts_still_running_longest_first() -> None:
    progress = Progress(io.StringIO(), colour=False, live=True)
    task: Any = SimpleNamespace(name="docker")
    progress._step = task.name
    progress.task_instance_started(task, SimpleNamespace(name="p-hive0.x"))  # type: ignore[arg-type]
    progress.task_instance_started(task, SimpleNamespace(name="p-hive1.x"))  # type: ignore[arg-type]
    started = progress._running["p-hive0.x"]
    assert progress.status_text(now=started + 25.2).startswith(f"docker: 2 {STATUS_MARK}: p-hive0.x 25s, p-hive1.x")
    progress.task_instance_completed(task, SimpleNamespace(name="p-hive0.x"), [])  # type: ignore[arg-type]
    assert progress.status_text(now=started + 30) == f"docker: 1 {STATUS_MARK}: p-hive1.x 30s"
    progress.close()
    assert progress.status_text() == ""


def test_live_lines_are_cut_to_the_terminal_width_and_whole_with_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    for full in (False, True):
        out = io.StringIO()
        progress = Progress(out, colour=True, live=True, full=full)
        task: Any = SimpleNamespace(name="base")
        progress.task_started(task)
        host = SimpleNamespace(name="p-hive0.x")
        progress.task_instance_started(task, host)  # type: ignore[arg-type]
        outcome = HostOutcome("p-hive0.x", "base", CHANGED, [Change("file[x]", LONG)], seconds=0.5)
        progress.task_instance_completed(task, host, [SimpleNamespace(result=outcome)])  # type: ignore[arg-type]
        progress.task_completed(task, None)  # type: ignore[arg-type]
        lines = [line for line in screen_lines(out.getvalue()) if STATUS_MARK not in line]
        assert lines[0] == "== base" and "\x1b[33m" in out.getvalue()  # colour through rich
        host_line = next(line for line in lines if "p-hive0.x" in line)
        if full:
            assert host_line.endswith(LONG)
        else:
            assert len(host_line) <= 80 and host_line.endswith("…") and LONG[:30] in host_line


def test_plain_lines_are_never_cut() -> None:
    out = io.StringIO()
    progress = Progress(out, colour=False)
    task: Any = SimpleNamespace(name="base")
    outcome = HostOutcome("p-hive0.x", "base", CHANGED, [Change("file[x]", LONG)], seconds=0.5)
    progress.task_instance_completed(task, SimpleNamespace(name="p-hive0.x"),  # type: ignore[arg-type]
                                     [SimpleNamespace(result=outcome)])  # type: ignore[arg-type]
    assert out.getvalue().rstrip().endswith(LONG) and "\x1b" not in out.getvalue()


def test_default_progress_goes_live_on_a_tty_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("NO_COLOR", "1")
    master, slave = os.openpty()
    read_end, write_end = os.pipe()
    with open(slave, "w") as tty, open(write_end, "w") as pipe:
        assert default_progress(tty).live is True and default_progress(tty).colour is False  # NO_COLOR: colour only
        assert default_progress(pipe).live is False
        monkeypatch.setenv("TERM", "dumb")
        assert default_progress(tty).live is False and default_progress(tty).colour is False
    os.close(master)
    os.close(read_end)
