"""Plan a whole task offline: canned facts, host vars and files in; the exact commands and file contents out.

Used for the OS-family paths no lab here can run (RHEL/AlmaLinux): nothing is executed, every primitive is
planned against a fake host whose files are a dict, the way the engine would plan them on a fresh host.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.base import Plan, Primitive
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.filesystem import Directory, Symlink
from hive_nornir.primitives.lines import _TextEdit, content_probe
from hive_nornir.primitives.packages import Packages

Guard = Callable[[Command], bool]


@dataclass
class TaskPlan:
    """Everything the task would do on the fake host, in order."""

    plans: list[tuple[str, Plan]] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)  # commands the task ran itself through ctx.run
    changes: list[str] = field(default_factory=list)
    notified: list[str] = field(default_factory=list)

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


def fake_probe(primitive: Primitive, files: dict[str, str], guard: Guard, installed: Sequence[str] = ()) -> str:
    """What the primitive's probe would print on the fake host (packages: only `installed` ones are there)."""
    if isinstance(primitive, Packages):
        return "".join(f"pkg={name} installed\n" for name in installed)
    if isinstance(primitive, Directory):  # directories and links are taken as in place: plans show files
        return (f"type=dir\nstat={int(primitive.mode or '0755', 8):o} {primitive.owner or 'root'} "
                f"{primitive.group or 'root'} 0 0\n")
    if isinstance(primitive, Symlink):
        return f"link={primitive.target}\n"
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


class Groups(list):  # type: ignore[type-arg]
    """Group objects that, like Nornir's ParentGroups, also answer `"hives" in host.groups`."""

    def __contains__(self, item: object) -> bool:
        return any(item in (g, g.name) for g in self)


class FakeContext:
    """The slice of HostContext tasks use, planning instead of touching a host."""

    def __init__(self, name: str, facts: Facts, host_vars: dict[str, Any], groups: Sequence[str],
                 files: dict[str, str], guard: Guard, run: Callable[[str], str], stage_hosts: dict[str, Any],
                 context_dir: Path | None, installed: Sequence[str] = ()) -> None:
        self.name = name
        self.facts = facts
        self.check = False
        host_vars.setdefault("hive_private_ip", "192.168.0.4")  # every inventory host has one
        self.host = SimpleNamespace(name=name, groups=Groups(SimpleNamespace(name=g) for g in groups),
                                    data=host_vars, get=host_vars.get)
        self.result = TaskPlan()
        self._files, self._guard, self._run, self._installed = files, guard, run, tuple(installed)
        self.outcome = SimpleNamespace(data={}, changes=[])
        stage_hosts = {n: (self.host if h is None else h) for n, h in stage_hosts.items()}
        self.run_state = SimpleNamespace(stage_hosts=lambda: stage_hosts, context_dir=context_dir, shared={},
                                         lock=threading.Lock(), check=False)

    def var(self, key: str, default: Any = None) -> Any:
        """Host data lookup like the real context."""
        return self.host.data.get(key, default)

    def ensure(self, primitives: Sequence[Primitive]) -> bool:
        """Plan each primitive against the fake host; keep the ones that change something."""
        changed = False
        for primitive in primitives:
            plan = primitive.plan(self.facts, fake_probe(primitive, self._files, self._guard, self._installed))
            if plan.error:
                raise AssertionError(f"{primitive.ident}: {plan.error}")
            if plan.changed:
                self.result.plans.append((primitive.ident, plan))
                for upload in plan.uploads:  # later edits of the same file see this one, as on a host
                    self._files[upload.path] = upload.content.decode()
                self.result.notified.extend(primitive.notify)
                changed = True
        return changed

    def run(self, command: str, **_kw: Any) -> SimpleNamespace:
        """Commands a task runs itself are recorded; their output comes from the test."""
        self.result.ran.append(command)
        out = self._run(command)
        return SimpleNamespace(ok=True, exit_status=0, stdout=out, stderr="")

    def changed(self, ident: str, summary: str, diff: str = "") -> None:
        """Imperative changes are recorded by name."""
        self.result.changes.append(f"{ident}: {summary}")

    def notify(self, *handlers: str) -> None:
        """Handlers are recorded, not run."""
        self.result.notified.extend(handlers)


def plan_task(task: Callable[[Any], None], facts: Facts, *, name: str = "p-hive0.pdns",
              host_vars: dict[str, Any] | None = None, groups: Sequence[str] = ("servers", "hives"),
              files: dict[str, str] | None = None, guard: Guard = lambda _c: True,
              run: Callable[[str], str] = lambda _c: "", stage_hosts: dict[str, Any] | None = None,
              context_dir: Path | None = None, installed: Sequence[str] = ()) -> TaskPlan:
    """Run `task` against a fake fresh host; guards say "run" unless `guard` says otherwise; `installed`
    names the packages the host already has."""
    ctx = FakeContext(name, facts, dict(host_vars or {}), groups, dict(files or {}), guard, run,
                      stage_hosts or {name: None}, context_dir, installed)
    task(ctx)
    return ctx.result
