"""The one fake host of the unit tests: a TaskContext (hive_nornir/engine/protocols.py) that plans, never executes.

A task runs against FakeHost exactly as against HostContext, and mypy checks that FakeHost satisfies the same
protocol (see `_satisfies_the_protocol` at the end), so the fake cannot drift from the real context. Nothing is
executed: every primitive is planned against a fake host whose files are a dict (the way the engine would plan
it on a fresh host), commands the task runs itself are answered by the test, and everything is recorded.
Used for the OS-family paths no lab here can run (RHEL/AlmaLinux) and for a task's decisions; tests/README.md
says how to write one.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hive_nornir.engine.errors import CommandFailed
from hive_nornir.engine.outcome import Change, HostOutcome
from hive_nornir.engine.protocols import Session, StageHost, TaskContext
from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.base import Plan, Primitive
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.filesystem import Directory, Symlink
from hive_nornir.primitives.lines import _TextEdit, content_probe
from hive_nornir.primitives.packages import Packages
from hive_nornir.transport import AuthenticationFailed, CommandResult
from hive_nornir.transport.session import wire

Guard = Callable[[Command], bool]
Answer = Callable[[str], "str | CommandResult"]  # command -> its stdout (exit 0), or a whole CommandResult


def result(stdout: str = "", status: int = 0, stderr: str = "", command: str = "") -> CommandResult:
    """A command's result for an Answer that needs a non-zero exit or stderr."""
    return CommandResult(command, status, stdout, stderr, 0.0)


class RunHere:
    """An Answer that runs each command with this machine's sh (tests point commands at temp paths only);
    commands starting with one of `skip` (e.g. `systemctl `: this machine's systemd is not ours) succeed untouched.
    A command with stdin data runs as the transport sends it (`wire`: the script, then the data, on stdin)."""

    def __init__(self, skip: tuple[str, ...] = ()) -> None:
        self.skip = skip

    def __call__(self, command: str) -> CommandResult:
        return self.with_stdin(command, None)

    def with_stdin(self, command: str, data: bytes | None) -> CommandResult:
        """Run `command` reading `data` after the script, as sshd would."""
        if self.skip and command.startswith(self.skip):
            return result(command=command)
        shell, payload = wire(command, sudo=False, is_root=True, env=None, data=data)
        done = subprocess.run(shell, shell=True, input=payload, capture_output=True, timeout=60)
        return CommandResult(command, done.returncode, done.stdout.decode(errors="replace"),
                             done.stderr.decode(errors="replace"), 0.0)


def run_here(skip: tuple[str, ...] = ()) -> RunHere:
    """An Answer running commands with this machine's sh (RunHere)."""
    return RunHere(skip)


# -- stage hosts ---------------------------------------------------------------------------------------------------

class Groups(list[Any]):
    """Group objects that, like Nornir's ParentGroups, also answer `"hives" in host.groups`."""

    def __contains__(self, item: object) -> bool:
        return any(item in (g, g.name) for g in self)


@dataclass(frozen=True)
class Group:
    """A group as a task sees it: only its name."""

    name: str


@dataclass
class FakeStageHost:
    """An inventory host (a StageHost): name, groups, data; `get` has no inheritance, the data is all there is."""

    name: str
    groups: Groups = field(default_factory=Groups)
    data: dict[str, Any] = field(default_factory=dict)
    username: str | None = "admin"

    def get(self, item: str, default: Any = None) -> Any:
        """Host data lookup like nornir's Host.get."""
        return self.data.get(item, default)


def stage_host(name: str, *groups: str, ip: object = None, **data: Any) -> FakeStageHost:
    """One stage host in these groups, with `hive_private_ip` when `ip` is given and any other data."""
    if ip is not None:
        data["hive_private_ip"] = ip
    return FakeStageHost(name, Groups(Group(g) for g in groups), data)


# -- the session ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    """One command run on the fake host, with what came with it (stdin never reaches argv on a real host)."""

    command: str
    stdin: str | None = None
    sudo: bool = True


@dataclass(frozen=True)
class FakeParams:
    """How the fake session logged in: a key, unless the test says password."""

    password: str | None = None
    key_files: tuple[str, ...] = ("k",)


class FakeSession:
    """A Session: records commands and staged files, answers commands from `answer`, a fresh login may fail.

    Also what the engine's tests put in `host.connections` (is_alive, round_trips): an answer may run the
    command locally or raise a transport error to lose the link."""

    def __init__(self, answer: Answer = lambda _c: "", *, user: str = "admin", params: FakeParams | None = None,
                 login_ok: bool = True, local_root: Path | None = None) -> None:
        self.answer, self.login_ok, self.local_root = answer, login_ok, local_root
        self._user, self._params = user, params or FakeParams()
        self.calls: list[Call] = []
        self.staged: list[tuple[str, str, str]] = []  # (path, mode, content) of stage_file and upload
        self.uploaded: list[str] = []  # the paths upload() installed
        self.closed = False
        self.round_trips = 0
        self._transport: Any = None  # what session_for's per-session hooks (proxy forward) look at

    @property
    def user(self) -> str:
        """The login user."""
        return self._user

    @property
    def params(self) -> FakeParams:
        """Password or key files."""
        return self._params

    @property
    def ran(self) -> list[str]:
        """Every command, in order."""
        return [c.command for c in self.calls]

    def run(self, command: str, *, sudo: bool = True, timeout: float | None = 300,
            stdin: bytes | str | None = None, secret: bool = False) -> CommandResult:
        """Record the call first (an answer may look at its stdin), then answer it."""
        text = stdin.decode() if isinstance(stdin, bytes) else stdin
        self.round_trips += 1
        self.calls.append(Call(command, text, sudo))
        data = stdin.encode() if isinstance(stdin, str) else stdin
        out = self.answer.with_stdin(command, data) if isinstance(self.answer, RunHere) else self.answer(command)
        return out if isinstance(out, CommandResult) else CommandResult(command, 0, out, "", 0.0)

    def stage_file(self, data: bytes, path: str, mode: str = "0644", owner: str = "root",
                   group: str = "root") -> str:
        """Candidates are `<dir>/.cand-<name>`; under `local_root` the candidate is written here, as the SSH
        session writes it on the host."""
        directory, name = path.rsplit("/", 1)
        self.staged.append((path, mode, data.decode("utf-8", "replace")))
        candidate = f"{directory}/.cand-{name}"
        self._write_local(candidate, data, mode)
        return candidate

    def upload(self, data: bytes, path: str, mode: str = "0644", owner: str = "root", group: str = "root") -> None:
        """Recorded like stage_file (and in `uploaded`); under `local_root` written to path here."""
        self.staged.append((path, mode, data.decode("utf-8", "replace")))
        self.uploaded.append(path)
        self._write_local(path, data, mode)

    def _write_local(self, path: str, data: bytes, mode: str) -> None:
        """Only a path under local_root (a test's tmp_path) is ever written on this machine."""
        if self.local_root is not None and Path(path).resolve().is_relative_to(self.local_root.resolve()):
            Path(path).write_bytes(data)
            Path(path).chmod(int(mode, 8))

    def fresh_login(self) -> float:
        """Succeeds, or is refused as sshd would refuse it."""
        if not self.login_ok:
            raise AuthenticationFailed("127.0.0.1", 2222, f"user {self._user!r} was refused")
        return 0.05

    def is_alive(self) -> bool:
        """Until closed."""
        return not self.closed

    def close(self) -> None:
        """Remembered (a renewed proxy forward closes the session)."""
        self.closed = True


# -- what the fake host's probes print -----------------------------------------------------------------------------

def fake_probe(primitive: Primitive, files: dict[str, str], guard: Guard, installed: Sequence[str] = ()) -> str:
    """What the primitive's probe would print on the fake host (packages: only `installed` ones are there)."""
    if isinstance(primitive, Packages):
        return "".join(f"pkg={name} installed\n" for name in installed)
    if isinstance(primitive, Directory):  # directories and links are taken as in place: plans show files
        return (f"type=dir\nstat={int(primitive.mode or '0755', 8):o} {primitive.owner or 'root'} "
                f"{primitive.group or 'root'} 4096 0 0\n")
    if isinstance(primitive, Symlink):
        return f"link={primitive.target}\ntarget=yes\n"
    if isinstance(primitive, Command):
        return "run=yes" if guard(primitive) else "run=no"
    path = getattr(primitive, "path", None)
    reads_content = isinstance(path, str) and primitive.probe(canned()) == content_probe(path)
    if isinstance(primitive, _TextEdit) or reads_content or (path and hasattr(primitive, "content")):
        if path in files:
            data = files[path].encode()
            b64 = base64.b64encode(data).decode()
            return (f"exists=yes\nstat=0644 root root {len(data)}\ncontent={b64}\nold={b64}\n"
                    f"sha={hashlib.sha256(data).hexdigest()}\nparent=yes\n")
        return "exists=no\nparent=yes\n"
    return ""


@dataclass
class TaskPlan:
    """Everything the task would do on the fake host, in order."""

    plans: list[tuple[str, Plan]] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)  # commands the task ran itself through ctx.run
    changes: list[str] = field(default_factory=list)  # imperative changes (ctx.changed), "ident: summary"
    notified: list[str] = field(default_factory=list)
    ensured: list[list[str]] = field(default_factory=list)  # the idents of every ensure() call, changed or not

    @property
    def commands(self) -> list[str]:
        """Every command the engine would run, in order."""
        return [c for _ident, plan in self.plans for c in plan.commands]

    @property
    def files(self) -> dict[str, str]:
        """Path -> full new content of every file the engine would install."""
        return {u.path: u.content.decode() for _ident, plan in self.plans for u in plan.uploads}

    @property
    def idents(self) -> list[str]:
        """Which primitives would change something."""
        return [ident for ident, _plan in self.plans]


# -- the host ------------------------------------------------------------------------------------------------------

class FakeHost:
    """A TaskContext on a fake host: files are a dict, commands answered by `answer`, everything recorded in
    `result`; guards say "run" unless `guard` says otherwise; `installed` names the packages already there."""

    def __init__(self, name: str = "p-hive0.pdns", facts: Facts | None = None, *,
                 host_vars: dict[str, Any] | None = None, groups: Iterable[str] = ("servers", "hives"),
                 files: dict[str, str] | None = None, guard: Guard = lambda _c: True, answer: Answer = lambda _c: "",
                 stage_hosts: Mapping[str, StageHost | None] | None = None, context_dir: Path | None = None,
                 installed: Sequence[str] = (), check: bool = False, session: FakeSession | None = None,
                 peers: dict[str, FakeSession] | None = None, apply_timeout: float = 900.0) -> None:
        data = dict(host_vars or {})
        data.setdefault("hive_private_ip", "192.168.0.4")  # every inventory host has one
        self._host = FakeStageHost(name, Groups(Group(g) for g in groups), data)
        self._facts = facts or canned()
        self._check = check
        self._session = session or FakeSession(answer)
        self._peers = dict(peers or {})
        self._stage: dict[str, StageHost] = {n: (self._host if h is None else h)
                                             for n, h in (stage_hosts or {name: None}).items()}
        self._context_dir = context_dir
        self._shared: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._apply_timeout = apply_timeout
        self._outcome = HostOutcome(host=name, step="test")
        self.files = dict(files or {})  # the host's files as they are after the planned changes
        self.guard, self.installed = guard, tuple(installed)
        self.result = TaskPlan()

    # -- the host, the stage, the mode ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Inventory name."""
        return self._host.name

    @property
    def host(self) -> FakeStageHost:
        """The inventory host."""
        return self._host

    @property
    def check(self) -> bool:
        """Check mode (the fake plans the same either way; tasks decide what to run)."""
        return self._check

    @check.setter
    def check(self, value: bool) -> None:
        self._check = value

    @property
    def facts(self) -> Facts:
        """The canned facts."""
        return self._facts

    def var(self, key: str, default: Any = None) -> Any:
        """Host data lookup like the real context."""
        return self._host.get(key, default)

    def stage_hosts(self) -> dict[str, StageHost]:
        """The stage given, this host included."""
        return dict(self._stage)

    @property
    def context_dir(self) -> Path | None:
        """The stage's state dir (a tmp_path in tests that need one)."""
        return self._context_dir

    @property
    def shared(self) -> dict[str, Any]:
        """Run-wide values."""
        return self._shared

    @property
    def lock(self) -> threading.Lock:
        """Run-wide lock."""
        return self._lock

    @property
    def apply_timeout(self) -> float:
        """Step timeout."""
        return self._apply_timeout

    @property
    def session(self) -> FakeSession:
        """The host's fake session (records commands and staged files)."""
        return self._session

    @property
    def outcome(self) -> HostOutcome:
        """A real HostOutcome: `data` and `changes` as the report would see them."""
        return self._outcome

    def session_to(self, host: StageHost) -> Session:
        """A peer's fake session (given as `peers`); a test that gives none has no other host to reach."""
        if host.name not in self._peers:
            raise AssertionError(f"the test gave no session to {host.name} (peers=...)")
        return self._peers[host.name]

    # -- changes -------------------------------------------------------------------------------------------------
    def ensure(self, primitives: Sequence[Primitive]) -> bool:
        """Plan each primitive against the fake host; keep the ones that change something."""
        self.result.ensured.append([p.ident for p in primitives])
        changed = False
        for primitive in primitives:
            plan = primitive.plan(self._facts, fake_probe(primitive, self.files, self.guard, self.installed))
            if plan.error:
                raise AssertionError(f"{primitive.ident}: {plan.error}")
            if plan.changed:
                self.result.plans.append((primitive.ident, plan))
                self._outcome.changes.append(Change(primitive.ident, plan.summary or primitive.ident, plan.diff))
                for upload in plan.uploads:  # later edits of the same file see this one, as on a host
                    self.files[upload.path] = upload.content.decode()
                self.result.notified.extend(primitive.notify)
                changed = True
        return changed

    def changed(self, ident: str, summary: str, diff: str = "") -> None:
        """Imperative changes are recorded by name."""
        self.result.changes.append(f"{ident}: {summary}")
        self._outcome.changes.append(Change(ident, summary, diff))

    def notify(self, *handlers: str) -> None:
        """Handlers are recorded, not run."""
        self.result.notified.extend(handlers)

    def run(self, command: str, *, sudo: bool = True, timeout: float | None = None, check: bool = True,
            stdin: bytes | str | None = None) -> CommandResult:
        """Through the fake session, recorded in `result.ran`; a failure raises when `check`, as on a host."""
        self.result.ran.append(command)
        done = self._session.run(command, sudo=sudo, timeout=timeout, stdin=stdin)
        if check and not done.ok:
            raise CommandFailed(f"`{command[:80]}`", done.exit_status, done.stderr or done.stdout)
        return done

    @property
    def calls(self) -> list[Call]:
        """Every command run through the session, with its stdin."""
        return self._session.calls


def plan_task(task: Callable[[TaskContext], None], facts: Facts, *, name: str = "p-hive0.pdns",
              host_vars: dict[str, Any] | None = None, groups: Sequence[str] = ("servers", "hives"),
              files: dict[str, str] | None = None, guard: Guard = lambda _c: True,
              run: Answer = lambda _c: "", stage_hosts: Mapping[str, StageHost | None] | None = None,
              context_dir: Path | None = None, installed: Sequence[str] = ()) -> TaskPlan:
    """Run `task` on a FakeHost and return what it would do; `run` answers the commands the task runs itself."""
    ctx = FakeHost(name, facts, host_vars=host_vars, groups=groups, files=files, guard=guard, answer=run,
                   stage_hosts=stage_hosts, context_dir=context_dir, installed=installed)
    task(ctx)
    return ctx.result


def _satisfies_the_protocol(ctx: FakeHost) -> TaskContext:
    """mypy proves here that FakeHost is a TaskContext (engine/context.py proves it for HostContext)."""
    return ctx
