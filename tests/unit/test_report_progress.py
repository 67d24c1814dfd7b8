"""Progress lines: ANSI colour only on a terminal; pipes, files and NO_COLOR get plain text."""

from __future__ import annotations

import io
import os
from types import SimpleNamespace
from typing import Any

import pytest

from hive_nornir.api import default_progress
from hive_nornir.engine.outcome import CHANGED, FAILED, Change, HostOutcome
from hive_nornir.report.progress import Progress


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
