"""What tasks and primitives may use of a host's context, as typing protocols: one contract, checked by mypy.

HostContext (engine/context.py) is the real implementation; tests/unit/fake_host.py is the one offline fake.
Both are checked against TaskContext by mypy (a function that returns each as a TaskContext), so a task that
type-checks against the protocol runs on either, and the fake cannot drift from the real context.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hive_nornir.engine.outcome import HostOutcome
    from hive_nornir.facts import Facts
    from hive_nornir.primitives.base import Primitive
    from hive_nornir.transport import CommandResult


class StageHost(Protocol):
    """One inventory host as a task reads it (nornir's Host satisfies it): name, groups, data with inheritance."""

    @property
    def name(self) -> str:
        """Inventory name, e.g. `p-hive0.pdns`."""

    @property
    def groups(self) -> Sequence[Any]:
        """Its groups (objects with `.name`; nornir's ParentGroups also answers `"hives" in groups`)."""

    @property
    def username(self) -> str | None:
        """The login user the inventory gives it."""

    def get(self, item: str, default: Any = None) -> Any:
        """A host variable with group/defaults inheritance."""


class SessionParams(Protocol):
    """How the session logged in (the parts tasks read to avoid locking the login out)."""

    @property
    def password(self) -> str | None:
        """A password login (None for key logins)."""

    @property
    def key_files(self) -> tuple[str, ...]:
        """The private key files offered."""


class Session(Protocol):
    """The parts of the SSH session tasks use directly (guarded config changes, proving a fresh login)."""

    @property
    def user(self) -> str:
        """The user the session logged in as."""

    @property
    def params(self) -> SessionParams:
        """The connection parameters it was opened with."""

    def run(self, command: str, *, sudo: bool = True, timeout: float | None = 300,
            stdin: bytes | str | None = None, secret: bool = False) -> CommandResult:
        """Run one command (its stdin is never logged; a secret one is named `(secret)` in logs and errors)."""

    def stage_file(self, data: bytes, path: str, mode: str = "0644", owner: str = "root",
                   group: str = "root") -> str:
        """Write a candidate next to path; returns the candidate's path."""

    def upload(self, data: bytes, path: str, mode: str = "0644", owner: str = "root", group: str = "root") -> None:
        """Install data at path atomically."""

    def fresh_login(self) -> float:
        """Prove a new connection still logs in; seconds it took."""

    def close(self) -> None:
        """Close the session (the next use reconnects)."""


class TaskContext(Protocol):
    """What a task is given on one host: who it is, its data and facts, the mode, and the ways to change it."""

    # -- the host, the stage, the mode ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Inventory name of the host."""

    @property
    def host(self) -> StageHost:
        """The inventory host (groups, username, data)."""

    @property
    def check(self) -> bool:
        """Check mode: probe and plan, never change the host."""

    @property
    def facts(self) -> Facts:
        """Facts of the host, gathered once per run."""

    def var(self, key: str, default: Any = None) -> Any:
        """Host data with group/defaults inheritance."""

    def stage_hosts(self) -> Mapping[str, StageHost]:
        """Every host of the stage, even when --limit narrows the run (hosts files, peer lists)."""

    @property
    def context_dir(self) -> Path | None:
        """The stage's state directory on the controller (secrets, CA, addons), None when there is none."""

    @property
    def shared(self) -> dict[str, Any]:
        """Values shared by every host of the run (a swarm join token); guard with `lock`."""

    @property
    def lock(self) -> threading.Lock:
        """The run-wide lock for `shared` and the stage's files."""

    @property
    def apply_timeout(self) -> float:
        """Seconds a changing command may take in this step."""

    @property
    def session(self) -> Session:
        """The host's SSH session (tasks that guard a config change talk to it directly)."""

    @property
    def outcome(self) -> HostOutcome:
        """This step's record on the host (tasks add report data to `outcome.data`)."""

    def session_to(self, host: StageHost) -> Session:
        """A session to another stage host, with this run's settings (e.g. swarm's first_hive)."""

    # -- changes -------------------------------------------------------------------------------------------------
    def ensure(self, primitives: Sequence[Primitive]) -> bool:
        """Bring every primitive to its desired state; True when something changed (or would)."""

    def changed(self, ident: str, summary: str, diff: str = "") -> None:
        """Record a change made (or predicted) by an imperative task."""

    def notify(self, *handlers: str) -> None:
        """Queue handlers (reload/restart) for the end of the step."""

    def run(self, command: str, *, sudo: bool = True, timeout: float | None = None, check: bool = True,
            stdin: bytes | str | None = None) -> CommandResult:
        """Run a command now (reads, or changes after checking `check`)."""
