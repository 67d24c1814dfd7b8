"""The front door on real hosts: the live status line on a pseudo-terminal, -q and the cron script for cron mail,
and print_result(report) on a real run.

The phase is a third-party plugin, as a user would add one: a tiny installed distribution (package + dist-info
with a `hive_nornir.phases` entry point) on PYTHONPATH, so the real CLI runs it with no test hook. Its steps: `slow`
(one host sleeps, named by FRONT_DOOR_SLOW), `files` (a file with a very long name and a secret file, both new
content every run), `gate` (fails on a host that has the marker file).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Lab, own_lab

from hive_nornir.api import Hive
from hive_nornir.report.progress import STATUS_MARK
from hive_nornir.report.run_report import EXIT_FAILED, EXIT_OK

pytestmark = pytest.mark.lab

PHASE = "front-door"
LONG = "/var/tmp/front-door-" + "a-rather-long-file-name-" * 5 + "settings.conf"
TOKEN = "/var/tmp/front-door-token"
MARKER = "/var/tmp/front-door-fail"
SECRET = "fd-secret-7f3a9c"  # the secret file's content starts with this; it must never be shown
COLUMNS = 100

PLUGIN = f'''\
"""A third-party phase for the front-door lab tests."""

import os
import shlex

from hive_nornir.engine.context import HostContext
from hive_nornir.engine.runbook import Runbook, Step
from hive_nornir.primitives.file import File


def slow(ctx: HostContext) -> None:
    """The host FRONT_DOOR_SLOW names sleeps, so the status line has a host to show."""
    if ctx.name == os.environ.get("FRONT_DOOR_SLOW"):
        ctx.run(shlex.join(["sleep", "4"]), sudo=False)


def files(ctx: HostContext) -> None:
    """New content every run (FRONT_DOOR_NONCE): a long change line, and a secret file's change."""
    nonce = os.environ.get("FRONT_DOOR_NONCE", "0")
    ctx.ensure([File(path={LONG!r}, content=f"nonce {{nonce}}\\n"),
                File(path={TOKEN!r}, content=f"{SECRET}-{{nonce}}\\n", mode="0600", secret=True)])


def gate(ctx: HostContext) -> None:
    """Fails where the marker file exists."""
    ctx.run(shlex.join(["test", "!", "-e", {MARKER!r}]), sudo=False)


RUNBOOK = Runbook({PHASE!r}, (Step("slow", slow, groups=("all",)), Step("files", files, groups=("all",)),
                            Step("gate", gate, groups=("all",))))
'''

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def rep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Two hosts of site rep1 (10.145.0.0/24), shared by every test here."""
    with own_lab(tmp_path_factory.mktemp("rep1"), "rep1", "10.145.0.0/24", 2, separate=False) as lab:
        yield lab


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The phase as an installed distribution: a directory to put on PYTHONPATH / sys.path."""
    site = tmp_path_factory.mktemp("front-door-plugin")
    (site / "hn_front_door").mkdir()
    (site / "hn_front_door" / "__init__.py").write_text(PLUGIN)
    info = site / "hn_front_door-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hn-front-door\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[hive_nornir.phases]\n{PHASE} = hn_front_door:RUNBOOK\n")
    return site


def env_for(plugin: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell with the plugin installed; colour not disabled."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES", "FRONT_DOOR_SLOW")}
    env["PYTHONPATH"] = os.pathsep.join([str(plugin), os.environ.get("PYTHONPATH", "")])
    return env | {"TERM": "xterm-256color", "FRONT_DOOR_NONCE": str(time.time_ns())} | extra


def cli_argv(lab: Lab, *args: str) -> list[str]:
    return [sys.executable, "-m", "hive_nornir", "-r", str(lab.root), *args]


def run_piped(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """As cron and scripts run it: stdout and stderr on pipes, no terminal."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)


class PtyRun:
    """A process on a pseudo-terminal of COLUMNS columns, its output read as it comes (bounded waits)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: size the terminal, then become the CLI
            try:
                fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.raw = ""
        self.exit_code: int | None = None

    def read_until(self, wanted: re.Pattern[str], deadline: float) -> re.Match[str] | None:
        """Read until the output matches, the process closes the terminal, or the deadline passes."""
        while time.monotonic() < deadline:
            found = wanted.search(self.raw)
            if found:
                return found
            ready, _, _ = select.select([self.fd], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                break
            self.raw += chunk.decode(errors="replace")
        return wanted.search(self.raw)

    def finish(self, deadline: float) -> int:
        """Read the rest and reap the child; kill it (ours) if it outlives the deadline."""
        self.read_until(re.compile(r"(?!x)x"), deadline)  # a pattern that never matches: read to EOF
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                self.exit_code = os.waitstatus_to_exitcode(status)
                return self.exit_code
            time.sleep(0.1)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        pytest.fail(f"the CLI on the pty did not finish in time; output so far:\n{self.raw}")


def segments(raw: str) -> list[str]:
    """What a terminal stream says, piece by piece: escape codes dropped, split at every \\r and \\n."""
    return [p for p in re.split(r"[\r\n]", ESCAPES.sub("", raw)) if p.strip()]


def normal(line: str) -> str:
    """A line with its timings and column padding taken out (two runs differ only there)."""
    return " ".join(re.sub(r"\d+\.\d+s", "T", line).split())


def same_lines(terminal: list[str], piped: list[str]) -> list[str]:
    """Match each terminal line to a piped one (equal, or a prefix ending in '…'); what is left unmatched."""
    rest = [normal(p) for p in piped]
    unmatched = []
    for line in map(normal, terminal):
        match = next((p for p in rest if p == line or (line.endswith("…") and p.startswith(line[:-1].rstrip()))),
                     None)
        if match is None:
            unmatched.append(line)
        else:
            rest.remove(match)
    return unmatched + [f"(only piped) {p}" for p in rest]


def test_pty_shows_the_slow_host_while_its_step_runs_and_ends_as_the_piped_lines(rep: Lab, plugin: Path,
                                                                                  tmp_path: Path) -> None:
    slow_host = rep.hosts[1]
    report_file = tmp_path / "report.json"
    warm = run_piped(cli_argv(rep, "run", PHASE), env_for(plugin))  # files exist: both runs below say "update"
    assert warm.returncode == EXIT_OK, warm.stdout + warm.stderr
    run = PtyRun(cli_argv(rep, "run", PHASE, "--json", str(report_file)), env_for(plugin, FRONT_DOOR_SLOW=slow_host))
    deadline = time.monotonic() + 240
    status = re.compile(rf"slow: \d+ {STATUS_MARK}: [^\r\n]*{re.escape(slow_host)} \d+s")
    seen = run.read_until(status, deadline)
    done = re.compile(rf"{re.escape(slow_host)}\s+(\x1b\[[0-9;]*m)?ok\b")
    assert seen is not None, f"no status line naming {slow_host}:\n{run.raw}"
    assert not done.search(run.raw[:seen.start()]), "the status line came after the slow host had finished"
    assert run.finish(deadline) == EXIT_OK, run.raw
    # the slow host's own line came after its status line: the line was shown while the step was running
    assert done.search(run.raw, seen.end()), run.raw
    assert "\x1b[33m" in run.raw  # colour on a terminal ("changed")

    lines = [s for s in segments(run.raw) if STATUS_MARK not in s]
    long_lines = [line for line in lines if "a-rather-long-file-name" in line]
    assert len(long_lines) == 2 and all(len(line) <= COLUMNS and line.endswith("…") for line in long_lines), lines
    # the whole text is in the JSON report
    doc = json.loads(report_file.read_text())
    assert [c["summary"] for s in doc["steps"] for c in s["changes"] if "long" in c["summary"]] == [
        f"update {LONG}"] * 2

    piped = run_piped(cli_argv(rep, "run", PHASE), env_for(plugin, FRONT_DOOR_SLOW=slow_host))
    assert piped.returncode == EXIT_OK, piped.stdout + piped.stderr
    assert "\x1b" not in piped.stdout + piped.stderr and STATUS_MARK not in piped.stdout
    assert any(line.endswith(f"update {LONG}; update {TOKEN}") for line in piped.stdout.splitlines())  # whole
    assert same_lines(lines, piped.stdout.splitlines()) == []


def test_term_dumb_and_no_color_on_a_pty(rep: Lab, plugin: Path) -> None:
    """TERM=dumb: plain lines only (no status line, no codes); NO_COLOR: the status line without colour."""
    dumb = PtyRun(cli_argv(rep, "run", PHASE, "-T", "slow"),
                  env_for(plugin, TERM="dumb", FRONT_DOOR_SLOW=rep.hosts[0]))
    assert dumb.finish(time.monotonic() + 240) == EXIT_OK, dumb.raw
    assert "\x1b" not in dumb.raw and STATUS_MARK not in dumb.raw
    assert "== slow" in dumb.raw and f"{PHASE} on stage private" in dumb.raw
    plain = PtyRun(cli_argv(rep, "run", PHASE, "-T", "slow"),
                   env_for(plugin, NO_COLOR="1", FRONT_DOOR_SLOW=rep.hosts[0]))
    assert plain.finish(time.monotonic() + 240) == EXIT_OK, plain.raw
    assert STATUS_MARK in plain.raw and not re.search(r"\x1b\[[0-9;]*m", plain.raw), plain.raw


def test_quiet_and_the_cron_script_are_silent_on_success_and_say_what_failed(rep: Lab, plugin: Path) -> None:
    quiet = run_piped(cli_argv(rep, "run", PHASE, "-q"), env_for(plugin))
    assert quiet.returncode == EXIT_OK and (quiet.stdout, quiet.stderr) == ("", "")
    reports = rep.context_dir / "reports"
    cron = [sys.executable, "-m", "hive_nornir.runbooks.cron_setup_hosts", "--root", str(rep.root),
            "--phase", PHASE, "--keep", "2", "--report-dir", str(reports)]
    for _ in range(3):
        ok = run_piped(cron, env_for(plugin))
        assert ok.returncode == EXIT_OK and (ok.stdout, ok.stderr) == ("", "")
    kept = sorted(reports.glob(f"{PHASE}-private-2*.json"))
    latest = reports / f"{PHASE}-private-latest.json"
    assert len(kept) == 2 and latest.resolve() == kept[-1].resolve()
    assert json.loads(latest.read_text())["exit_code"] == EXIT_OK

    victim = rep.hosts[1]
    rep.docker_exec(victim, f"touch {MARKER}")
    try:
        failed_quiet = run_piped(cli_argv(rep, "run", PHASE, "-q"), env_for(plugin))
        failed_cron = run_piped(cron, env_for(plugin))
    finally:
        rep.docker_exec(victim, f"rm -f {MARKER}")
    why = f"error: {victim}: failed at step gate: `test '!' -e {MARKER}`: exit 1"
    assert failed_quiet.returncode == EXIT_FAILED and failed_quiet.stdout == ""
    assert failed_quiet.stderr.splitlines() == [why, f"exit {EXIT_FAILED}: at least one host failed a step "
                                                     "(others may have finished), or the provider failed"]
    assert failed_cron.returncode == EXIT_FAILED and failed_cron.stdout == ""
    lines = failed_cron.stderr.splitlines()
    assert lines[0] == why and lines[1].startswith(f"report: {reports}/{PHASE}-private-") and lines[2].startswith(
        f"exit {EXIT_FAILED}: ")
    newest = sorted(reports.glob(f"{PHASE}-private-2*.json"))
    assert len(newest) == 2 and latest.resolve() == newest[-1].resolve() == Path(lines[1][len("report: "):])
    assert json.loads(latest.read_text())["exit_code"] == EXIT_FAILED


def test_print_result_prints_a_real_run_and_report_indexes_by_host(rep: Lab, plugin: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import io

    from nornir.core.task import AggregatedResult, MultiResult
    from nornir_utils.plugins.functions import print_result

    monkeypatch.syspath_prepend(str(plugin))  # the plugin "installed" in this process too
    nonce = str(time.time_ns())
    monkeypatch.setenv("FRONT_DOOR_NONCE", nonce)
    victim = rep.hosts[1]
    rep.docker_exec(victim, f"touch {MARKER}")
    try:
        report = Hive(root=rep.root).run(PHASE)
    finally:
        rep.docker_exec(victim, f"rm -f {MARKER}")
    _, content = rep.docker_exec(rep.hosts[0], f"cat {TOKEN}")
    assert content.strip() == f"{SECRET}-{nonce}"  # the secret file really was written with the secret

    assert isinstance(report, AggregatedResult) and list(report) == rep.hosts
    mine = report[rep.hosts[0]]
    assert isinstance(mine, MultiResult) and [r.name for r in mine] == [PHASE, "slow", "files", "gate"]
    assert mine[2].changed and not mine[1].changed and not mine.failed
    assert report[victim.split(".")[0]] is report[victim] and report[victim][3].failed
    assert list(report.failed_hosts) == [victim]

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_result(report)
    text = ESCAPES.sub("", out.getvalue())
    for host in rep.hosts:
        assert f"* {host} ** changed : True" in text
    for step, changed in (("slow", False), ("files", True), ("gate", False)):
        assert f"---- {step} ** changed : {changed}" in text
    assert f"update {LONG}" in text or f"create {LONG}" in text
    assert f"(content of {TOKEN} hidden: secret)" in text
    assert f"`test '!' -e {MARKER}`: exit 1" in text
    assert SECRET not in text and SECRET not in report.to_json() and SECRET not in report.text()
