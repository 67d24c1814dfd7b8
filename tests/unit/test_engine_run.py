"""run_steps and HostContext over a fake connection: drop-out of failed hosts, handler order, serial batches.

Stand-in: hosts here are a fake `hive_ssh` session object placed in `host.connections` (nornir.md section 8,
"a fake connection plugin"), because these properties are about the engine's ordering, not about SSH; the
same behaviours are proven on real hosts in tests/lab/test_engine_lab.py.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from fake_host import FakeSession, RunHere
from nornir.core import Nornir
from nornir.core.inventory import Defaults, Groups, Host, Hosts, Inventory
from nornir.plugins.runners import ThreadedRunner

from hive_nornir.engine.context import HostContext, RunState
from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.handlers import HandlerJournal, handler_command
from hive_nornir.engine.outcome import FAILED, OK, UNREACHABLE, HostOutcome
from hive_nornir.engine.runbook import Step, run_steps
from hive_nornir.facts import canned
from hive_nornir.primitives.base import run_handler
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.transport import CONNECTION_NAME, CommandResult
from hive_nornir.transport.errors import (
    CommandTimeout,
    ConnectionLost,
    ConnectionRefused,
    NoExitStatus,
    SudoPasswordRequired,
)

HOSTS = ("h0", "h1", "h2", "h3")


class Link(RunHere):
    """Runs commands here (`local`) or answers nothing; a command containing `drop_on` loses the link."""

    def __init__(self, name: str, local: bool, drop_on: str | None) -> None:
        super().__init__()
        self.name, self.local, self.drop_on = name, local, drop_on

    def with_stdin(self, command: str, data: bytes | None) -> CommandResult:
        if self.drop_on is not None and self.drop_on in command:
            raise ConnectionRefused(self.name, 22, "connection lost (fake)")
        return super().with_stdin(command, data) if self.local else CommandResult(command, 0, "", "", 0.0)


def engine_session(name: str, local: bool = False, drop_on: str | None = None) -> FakeSession:
    """`local=True` runs each command with sh here, `drop_on` makes a matching command lose the link."""
    return FakeSession(Link(name, local, drop_on))


class FakeConnection:
    """What nornir keeps in host.connections: an object with .connection and .close()."""

    def __init__(self, session: FakeSession) -> None:
        self.connection = session

    def close(self) -> None:
        self.connection.close()


def make_run(tmp_path: Path, sessions: dict[str, FakeSession] | None = None) -> tuple[Nornir, RunState]:
    """Four hosts in group servers, each with a fake session already 'open', facts pre-gathered."""
    defaults = Defaults()
    hosts = Hosts()
    for name in HOSTS:
        host = Host(name=name, hostname="127.0.0.1", port=22, defaults=defaults)
        host.connections[CONNECTION_NAME] = FakeConnection((sessions or {}).get(name) or engine_session(name))  # type: ignore[assignment]
        hosts[name] = host
    nr = Nornir(inventory=Inventory(hosts=hosts, groups=Groups(), defaults=defaults),
                runner=ThreadedRunner(num_workers=10))
    run = RunState(nornir=nr, context_dir=tmp_path, handlers=HandlerJournal(tmp_path / "handlers.json"),
                   facts={n: canned() for n in HOSTS})
    return nr, run


def session(nr: Nornir, name: str) -> FakeSession:
    conn: Any = nr.inventory.hosts[name].connections[CONNECTION_NAME]
    return conn.connection


def recorder(log: list[tuple[str, str]], lock: threading.Lock, tag: str) -> Callable[[HostContext], None]:
    def task(ctx: HostContext) -> None:
        with lock:
            log.append((tag, ctx.name))
    return task


def test_failed_or_unreachable_host_drops_out_of_later_steps(tmp_path: Path) -> None:
    nr, run = make_run(tmp_path)
    ran: list[tuple[str, str]] = []
    lock = threading.Lock()

    def first(ctx: HostContext) -> None:
        recorder(ran, lock, "first")(ctx)
        if ctx.name == "h1":
            raise StepFailed("h1 broke")
        if ctx.name == "h2":
            raise ConnectionRefused("127.0.0.1", 22, "sshd gone")

    steps = [Step("first", first, groups=("all",)), Step("second", recorder(ran, lock, "second"), groups=("all",))]
    outcomes = run_steps(nr, steps, run)
    assert {h for t, h in ran if t == "first"} == set(HOSTS)
    assert {h for t, h in ran if t == "second"} == {"h0", "h3"}
    status = {(o.step, o.host): o.status for o in outcomes}
    assert status[("first", "h1")] == FAILED and status[("first", "h2")] == UNREACHABLE
    assert ("second", "h1") not in status and status[("second", "h0")] == OK


def test_handlers_run_once_per_host_at_phase_end_and_stay_owed_on_failure(tmp_path: Path) -> None:
    nr, run = make_run(tmp_path)

    def notify(ctx: HostContext) -> None:
        ctx.run("echo step work")
        ctx.notify("restart:foo", "reload:ssh")

    def fail_h3(ctx: HostContext) -> None:
        if ctx.name == "h3":
            raise StepFailed("no")

    steps = [Step("a", notify, groups=("all",)), Step("b", notify, groups=("all",)),
             Step("c", fail_h3, groups=("all",))]
    outcomes = run_steps(nr, steps, run)
    for name in ("h0", "h1", "h2"):
        commands = session(nr, name).ran
        assert commands.count("systemctl restart foo") == 1 and commands.count("systemctl reload ssh") == 1
        # after every step's work, in notification order
        assert commands[-2:] == ["systemctl restart foo", "systemctl reload ssh"]
    handler_rows = [o for o in outcomes if o.step == "handlers"]
    assert {o.host for o in handler_rows} == {"h0", "h1", "h2"}
    assert all(o.handlers_run == ["restart:foo", "reload:ssh"] for o in handler_rows)
    # the failed host ran no handler; they stay owed on disk for the next run
    assert not any(c.startswith("systemctl") for c in session(nr, "h3").ran)
    assert json.loads((tmp_path / "handlers.json").read_text()) == {"h3": ["restart:foo", "reload:ssh"]}


@pytest.mark.parametrize("serial", [1, 2])
def test_serial_batches_do_not_overlap(tmp_path: Path, serial: int) -> None:
    nr, run = make_run(tmp_path)
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    gate = threading.Barrier(serial, timeout=10)  # a whole batch is inside the task at once

    def task(ctx: HostContext) -> None:
        with lock:
            events.append(("start", ctx.name))
        gate.wait()
        with lock:
            events.append(("end", ctx.name))

    outcomes = run_steps(nr, [Step("rolling", task, groups=("all",), serial=serial)], run)
    assert [o.status for o in outcomes] == [OK] * 4
    batches = [HOSTS[i:i + serial] for i in range(0, len(HOSTS), serial)]
    for earlier, later in pairwise(batches):
        last_end = max(events.index(("end", h)) for h in earlier)
        first_start = min(events.index(("start", h)) for h in later)
        assert last_end < first_start, events


def test_notification_is_journalled_before_the_change_is_applied(tmp_path: Path) -> None:
    """The link drops while the apply script runs: the reload it notified must already be on disk."""
    target = tmp_path / "made-by-apply"
    fake = engine_session("h0", local=True, drop_on="install -d")
    nr, run = make_run(tmp_path, {"h0": fake})
    outcome = HostOutcome(host="h0", step="s")
    ctx = HostContext(nr.inventory.hosts["h0"], run, outcome)
    with pytest.raises(ConnectionRefused):
        ctx.ensure([Directory(str(target)).with_notify("reload:ssh")])
    assert any("install -d" in c for c in fake.ran)  # the apply was attempted (and lost)
    assert json.loads((tmp_path / "handlers.json").read_text()) == {"h0": ["reload:ssh"]}
    # a fresh run (new journal object, as after a crash) still owes the reload
    assert HandlerJournal(tmp_path / "handlers.json").pending("h0") == ["reload:ssh"]


def test_check_mode_fails_a_genuine_error_instead_of_assuming_it(tmp_path: Path) -> None:
    """A file where a directory must be is an error in check mode too, even after a predicted change."""
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    nr, run = make_run(tmp_path, {"h0": engine_session("h0", local=True)})
    run.check = True
    run.predicted.add("h0")  # an earlier change was predicted: missing prerequisites would be assumed
    ctx = HostContext(nr.inventory.hosts["h0"], run, HostOutcome(host="h0", step="s"))
    with pytest.raises(StepFailed, match="exists and is not a directory"):
        ctx.ensure([Directory(str(blocker))])
    # while a genuinely missing prerequisite (the parent of a symlink) is still assumed
    from hive_nornir.primitives.filesystem import Symlink

    assert ctx.ensure([Symlink(str(tmp_path / "later" / "link"), "/x")])
    assert ctx.outcome.changes[-1].assumed


def test_command_handler_runs_once_after_a_change_and_never_without_one(tmp_path: Path) -> None:
    """Issue 11 item 13: `on_change(argv)` runs a command once per host at the phase end, journalled like a reload;
    the no-change run costs the one probe exec and nothing else."""
    made, log = tmp_path / "made dir", tmp_path / "handler.log"
    fake = engine_session("h0", local=True)
    nr, run = make_run(tmp_path, {"h0": fake})
    record = ["sh", "-c", 'echo "ran $1" >> "$2"', "sh", "with 'quotes'", str(log)]

    def task(ctx: HostContext) -> None:
        ctx.ensure([Directory(str(made)).on_change(record), Directory(str(tmp_path / "other")).on_change(record)])

    step = Step("dirs", task, groups=("all",))
    first = run_steps(nr.filter(name="h0"), [step], run)
    assert log.read_text() == "ran with 'quotes'\n"  # two primitives notified it: it ran once
    [handlers] = [o for o in first if o.step == "handlers"]
    assert handlers.handlers_run == ["run:" + shlex.join(record)]
    assert not (tmp_path / "handlers.json").exists() or json.loads((tmp_path / "handlers.json").read_text()) == {}
    fake.calls.clear()
    run.facts["h0"] = canned()  # the change dropped the cached facts; a new run gathers them either way
    second = run_steps(nr.filter(name="h0"), [step], run)
    assert log.read_text() == "ran with 'quotes'\n" and [o.step for o in second] == ["dirs"]
    assert len(fake.ran) == 1  # the batched probe only


def test_command_handler_names_are_argument_lists() -> None:
    assert run_handler(["sysctl", "-p", "/etc/sysctl.d/a b.conf"]) == "run:sysctl -p '/etc/sysctl.d/a b.conf'"
    assert handler_command(run_handler(["sysctl", "-p", "/etc/x y"])) == "sysctl -p '/etc/x y'"
    for bad in ("sysctl -p", [], ["sysctl", ""]):
        with pytest.raises(ValueError, match="argument list"):
            run_handler(bad)
    with pytest.raises(ValueError, match="no command"):
        handler_command("run:")
    journal = HandlerJournal(None)
    journal.notify("h", ("run:sysctl --system", "reload:ssh", "run:sysctl --system"))
    assert journal.pending("h") == ["run:sysctl --system", "reload:ssh"]


@pytest.mark.parametrize(("error", "status"), [
    (ConnectionRefused("h0", 22, "sshd not listening"), UNREACHABLE),
    (ConnectionLost("h0", 22, "connection lost while running `sleep 9`: 3 keepalives unanswered"), UNREACHABLE),
    (CommandTimeout("h0", 22, "command exceeded its 1s timeout and was abandoned: sleep 9"), FAILED),
    (NoExitStatus("h0", 22, "`sleep 9` was killed by signal KILL", "KILL"), FAILED),
    (SudoPasswordRequired("h0", 22, "user 'u' cannot run `sudo -n`"), FAILED),
])
def test_only_connect_errors_and_dead_peers_are_unreachable(tmp_path: Path, error: Exception, status: str) -> None:
    nr, run = make_run(tmp_path)

    def task(ctx: HostContext) -> None:
        if ctx.name == "h0":
            raise error

    outcomes = run_steps(nr, [Step("one", task, groups=("all",))], run)
    got = {o.host: (o.status, o.error) for o in outcomes}
    assert got["h0"] == (status, str(error)) and got["h1"] == (OK, "")


def test_a_failed_upload_is_failed_with_the_reason_not_unreachable(tmp_path: Path) -> None:
    """Issue 10 item 14: `install -o zabbix` naming a missing user is the host answering, not unreachable."""
    nr, run = make_run(tmp_path, {"h1": engine_session("h1", local=True)})  # the apply runs here: no zabbix user

    def task(ctx: HostContext) -> None:
        if ctx.name == "h1":
            ctx.ensure([File(path=str(tmp_path / "zabbix_agentd.conf"), content="x\n", owner="zabbix",
                             group="zabbix")])

    outcomes = run_steps(nr, [Step("agent", task, groups=("all",))], run)
    h1 = next(o for o in outcomes if o.host == "h1")
    assert h1.status == FAILED and "install: invalid user" in h1.error and "zabbix" in h1.error, h1


class TimingOut(FakeSession):
    """Runs scripts here under a real deadline and raises CommandTimeout with the partial stdout, as the transport."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def run(self, command: str, *, sudo: bool = True, timeout: float | None = 300,
            stdin: bytes | str | None = None, secret: bool = False) -> CommandResult:
        self.round_trips += 1
        proc = subprocess.Popen(["sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as e:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            partial = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            raise CommandTimeout(self.name, 22, f"command exceeded its {timeout or 0:g}s timeout: {command[:20]}",
                                 command[:20], partial, "") from None
        return CommandResult(command, proc.returncode, out, err, 0.0)


def test_a_timeout_names_the_command_that_hung_not_set_e(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 item 15: the reason was the script's first line (`set -e`); now the hung command, or the probe."""
    nr, run = make_run(tmp_path, {"h0": TimingOut("h0")})
    flag = tmp_path / "flag"

    def task(ctx: HostContext) -> None:
        if ctx.name == "h0":
            ctx.ensure([Command(f"touch {flag}", creates=str(flag)), Command("sleep 0.1; sleep 30")])

    outcomes = run_steps(nr, [Step("slow", task, groups=("all",), timeout=1.5)], run)
    h0 = next(o for o in outcomes if o.host == "h0")
    assert h0.status == FAILED and "`sleep 0.1; sleep 30` exceeded its 1.5s timeout" in h0.error, h0.error
    assert "set -e" not in h0.error

    def probe_hangs(ctx: HostContext) -> None:
        if ctx.name == "h0":
            ctx.ensure([Command("true", creates=str(flag)), Command("echo second", unless="sleep 300")])

    monkeypatch.setattr("hive_nornir.engine.context.PROBE_TIMEOUT", 1.0)  # the product's is 120 s
    nr, run = make_run(tmp_path, {"h0": TimingOut("h0")})
    outcomes = run_steps(nr, [Step("probe", probe_hangs, groups=("all",))], run)
    h0 = next(o for o in outcomes if o.host == "h0")
    assert h0.status == FAILED and "probe of command[echo second] exceeded its 1s timeout" in h0.error, h0.error


def test_a_task_that_raises_everywhere_logs_one_traceback_naming_the_hosts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 10 item 16: the same traceback was printed once per host."""
    nr, run = make_run(tmp_path)

    def broken(ctx: HostContext) -> None:
        raise RuntimeError(f"boom on {ctx.name}")

    with caplog.at_level(logging.ERROR, logger="hive_nornir.engine.runbook"):
        outcomes = run_steps(nr, [Step("broken", broken, groups=("all",))], run)
    assert {o.host: (o.status, o.error) for o in outcomes} == {h: (FAILED, f"RuntimeError: boom on {h}") for h in HOSTS}
    records = [r for r in caplog.records if r.name == "hive_nornir.engine.runbook"]
    assert len(records) == 1, [r.getMessage()[:80] for r in records]
    text = records[0].getMessage()
    assert "step broken: the task raised RuntimeError on 4 host(s): h0, h1, h2, h3" in text
    assert text.count("Traceback (most recent call last)") == 1 and "in broken" in text


def test_run_task_has_a_documented_timeout_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 item 16: run_task's commands had the 900 s apply default; now 300 s, or what the caller says."""
    from hive_nornir.api import RUN_TASK_TIMEOUT, Hive

    hive = Hive.__new__(Hive)
    seen: list[Any] = []
    monkeypatch.setattr(hive, "run", lambda runbook, **kw: seen.append(runbook))
    hive.run_task(lambda ctx: None)
    hive.run_task(lambda ctx: None, timeout=5)
    assert [rb.steps[0].timeout for rb in seen] == [RUN_TASK_TIMEOUT, 5] and RUN_TASK_TIMEOUT == 300
    ctx = HostContext(Host(name="h"), RunState(nornir=None), HostOutcome("h", "s"), seen[1].steps[0].timeout)  # type: ignore[arg-type]
    assert ctx.apply_timeout == 5


def test_a_later_refusal_stops_the_step_before_an_earlier_change(tmp_path: Path) -> None:
    """Issue 10 #6's shape: the first primitive would change the host, the second refuses; nothing may change."""
    made = tmp_path / "made-by-the-first"
    blocker = tmp_path / "blocker"
    blocker.write_text("x")  # a file where the second primitive wants a directory: Plan.error
    fake = engine_session("h0", local=True)
    nr, run = make_run(tmp_path, {"h0": fake})
    ctx = HostContext(nr.inventory.hosts["h0"], run, HostOutcome(host="h0", step="s"))
    with pytest.raises(StepFailed, match="exists and is not a directory"):
        ctx.ensure([Directory(str(made)), Directory(str(blocker))])
    assert not made.exists() and len(fake.ran) == 1  # the probe only, no apply
    assert ctx.outcome.changes == []
