"""Config transaction: change a running service's config files so that any failure puts the old files back.

The order (anchors.md §6, and §5 for keepalived and DRBD): each candidate next to its target (same filesystem),
validated on its own; a dead-man timer on the host that restores the backups unless cancelled; backup and atomic
rename; the WHOLE config validated; the effective value checked; reload; prove (e.g. a fresh login); cancel the
timer. Any failure after the first rename restores every backup through the still-open session (and reloads
again if the reload had started); if the controller dies instead, the timer does it. Nothing before the first
rename changes a live file, so a refusal there says "nothing changed".

`TransactionPlan` is pure (paths, candidates and a stamp in, shell text out: unit-tested with fixture tables);
`run_transaction(ctx, tx)` carries it out. Commands are argument lists joined with shlex.join; a hook that needs
a loop or a wait (sshd's reload) passes a `Script` it built from quoted parts.
"""

from __future__ import annotations

import posixpath
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from hive_nornir.engine.errors import StepFailed

if TYPE_CHECKING:
    from hive_nornir.engine.protocols import TaskContext

Argv = tuple[str, ...]
CANDIDATE = "%s"  # in a validate argv: replaced by the candidate's path (as Ansible's `validate`)


@dataclass(frozen=True)
class Script:
    """Shell text the caller built from quoted parts, for what one argv cannot say (waits, loops)."""

    text: str


Command = Argv | Script
Check = Callable[[], str]  # runs on the host through the caller's context; '' = fine, else the reason


def shell(command: Command, candidate: str | None = None) -> str:
    """One shell command line: an argv is joined with shlex.join (CANDIDATE replaced), a Script is kept as is."""
    if isinstance(command, Script):
        return command.text
    if not command:
        raise ValueError("an empty argv is not a command")
    args = [a.replace(CANDIDATE, candidate) if candidate is not None else a for a in command]
    return shlex.join(args)


def backup_path(path: str, stamp: str) -> str:
    """Where the old file is kept: `<path>.<stamp>.hive~`, as every hive_nornir backup (no `*.conf` glob reads it)."""
    return f"{path}.{stamp}.hive~"


@dataclass(frozen=True)
class ConfigFile:
    """One file of the transaction and what the caller's probe found (so the plan needs no probe of its own)."""

    path: str
    content: bytes
    existed: bool  # a backup is made and restored; else the file is removed again on rollback
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    validate: Argv = ()  # run on the candidate (CANDIDATE = its path) before anything live changes
    label: str = ""  # how messages name the candidate ("the drop-in on its own"); default: the path
    make_dir: bool = False  # the directory does not exist: made first, removed on rollback

    def __post_init__(self) -> None:
        """Absolute paths only; a validate argv must say where the candidate goes."""
        if not posixpath.isabs(self.path) or self.path.endswith("/"):
            raise ValueError(f"a config file needs an absolute file path, not {self.path!r}")
        if self.validate and not any(CANDIDATE in a for a in self.validate):
            raise ValueError(f"validate for {self.path} must name the candidate with {CANDIDATE}")

    @property
    def directory(self) -> str:
        """The target's directory (where the candidate is staged)."""
        return posixpath.dirname(self.path)


@dataclass(frozen=True)
class ConfigTransaction:
    """A guarded change of one service's config files; every hook is optional except the files."""

    name: str  # short service name: messages and the dead-man unit `hive-<name>-rollback-<stamp>`
    files: tuple[ConfigFile, ...]
    validate_whole: Argv = ()  # e.g. ("/usr/sbin/sshd", "-t"), ("keepalived", "--config-test")
    effective: Check | None = None  # e.g. sshd -T -C for our own login shows the wanted values and admits us
    reload: Command | None = None  # e.g. ("systemctl", "reload", "keepalived") or Script(sshd's reload-and-wait)
    prove: Check | None = None  # e.g. a fresh SSH login; runs on the controller side after the reload
    prove_name: str = "the proof"  # "a fresh login": how rollback notes name it
    rollback_reload: Command | None = None  # after the files are back once the reload started; default: reload
    deadman_seconds: int = 120  # 0: no timer (and hosts without systemd get none)

    def __post_init__(self) -> None:
        """Distinct paths, a unit-safe name."""
        if not self.files:
            raise ValueError("a config transaction needs at least one file")
        if len({f.path for f in self.files}) != len(self.files):
            raise ValueError("a config transaction names each file once")
        if not self.name.replace("-", "").isalnum():
            raise ValueError(f"transaction name must be letters, digits and '-', not {self.name!r}")

    def plan(self, stamp: str, candidates: dict[str, str]) -> TransactionPlan:
        """The shell of every phase for these staged candidates (path -> candidate path)."""
        return TransactionPlan(self, stamp, dict(candidates))


@dataclass(frozen=True)
class TransactionPlan:
    """Pure: what the transaction runs at each phase, as shell text."""

    tx: ConfigTransaction
    stamp: str
    candidates: dict[str, str]

    def mkdirs(self) -> list[str]:
        """Directories to make before staging (mode 0755)."""
        return [shlex.join(["mkdir", "-p", "-m", "0755", f.directory]) for f in self.tx.files if f.make_dir]

    def vets(self) -> list[tuple[ConfigFile, str]]:
        """(file, command) validating each candidate on its own."""
        return [(f, shell(f.validate, self.candidates[f.path])) for f in self.tx.files if f.validate]

    def discard(self) -> str:
        """Nothing went live: remove the candidates (and the directories this attempt made)."""
        lines = [shlex.join(["rm", "-f", *self.candidates.values()])] if self.candidates else []
        lines += [shlex.join(["rmdir", f.directory]) + " 2>/dev/null || true" for f in self.tx.files if f.make_dir]
        return "\n".join(lines) or "true"

    def install(self) -> str:
        """Back up what exists, then rename each candidate into place (same directory: atomic)."""
        lines = ["set -e"]
        for f in self.tx.files:
            if f.existed:
                lines.append(shlex.join(["cp", "-p", f.path, backup_path(f.path, self.stamp)]))
            lines.append(shlex.join(["mv", "-f", self.candidates[f.path], f.path]))
        return "\n".join(lines)

    def whole(self) -> str | None:
        """The whole-config validation, if any."""
        return shell(self.tx.validate_whole) if self.tx.validate_whole else None

    def reload(self) -> str | None:
        """The reload, if any."""
        return shell(self.tx.reload) if self.tx.reload is not None else None

    def rollback(self, reload: bool) -> str:
        """Every file back as it was; after a reload, validate the old config and reload it. Safe to run twice."""
        lines = []
        for f in self.tx.files:
            if f.existed:
                bak, path = shlex.quote(backup_path(f.path, self.stamp)), shlex.quote(f.path)
                lines.append(f"if [ -f {bak} ]; then mv -f {bak} {path}; fi")
            else:
                lines.append(shlex.join(["rm", "-f", f.path]))
        lines += [shlex.join(["rmdir", f.directory]) + " 2>/dev/null || true" for f in self.tx.files if f.make_dir]
        if reload:
            whole = self.whole()
            if whole:
                lines.append(f"{whole} || exit $?")
            again = self.tx.rollback_reload if self.tx.rollback_reload is not None else self.tx.reload
            if again is not None:
                lines.append(shell(again))
        return "\n".join(lines) or "true"

    @property
    def unit(self) -> str:
        """The dead-man's transient unit."""
        return f"hive-{self.tx.name}-rollback-{self.stamp}"

    @property
    def deadman_script(self) -> str:
        """Where the dead-man's rollback script lives (tmpfs: gone after a reboot, like the timer)."""
        return f"/run/{self.unit}.sh"

    def deadman_body(self) -> str:
        """The script the timer runs: it removes itself, then rolls back and reloads (sh keeps reading it)."""
        return shlex.join(["rm", "-f", self.deadman_script]) + "\n" + self.rollback(reload=True) + "\n"

    def arm(self) -> str:
        """Commit-confirmed: systemd runs the rollback by itself unless the proof cancels it."""
        return shlex.join(["systemd-run", "--quiet", f"--unit={self.unit}",
                           f"--on-active={self.tx.deadman_seconds}", "/bin/sh", self.deadman_script])

    def disarm(self) -> str:
        """The change is proven (or already undone): the timer must never fire."""
        return (shlex.join(["systemctl", "stop", f"{self.unit}.timer"]) + " 2>/dev/null; "
                + shlex.join(["rm", "-f", self.deadman_script]))


@dataclass
class _Run:
    """One execution of a transaction on one host."""

    ctx: TaskContext
    tx: ConfigTransaction
    stamp: str

    def __post_init__(self) -> None:
        self.plan = self.tx.plan(self.stamp, {})
        self.armed = False

    def stage(self) -> None:
        """Directories, then every candidate next to its target; each vetted before anything live changes."""
        for command in self.plan.mkdirs():
            self.ctx.run(command)
        candidates: dict[str, str] = {}
        try:
            for f in self.tx.files:
                candidates[f.path] = self.ctx.session.stage_file(f.content, f.path, f.mode, f.owner, f.group)
                self.plan = self.tx.plan(self.stamp, candidates)
            for f, command in self.plan.vets():
                r = self.ctx.run(command, check=False)
                if not r.ok:
                    raise StepFailed(f"{self.tx.name} rejects {f.label or f.path} (nothing changed): "
                                     f"{(r.stderr or r.stdout).strip()}")
        except BaseException:
            self.ctx.run(self.tx.plan(self.stamp, candidates).discard(), check=False)
            raise

    def arm(self) -> None:
        """The dead-man timer, on systemd hosts when asked for."""
        if not self.tx.deadman_seconds or self.ctx.facts.init != "systemd":
            return
        self.ctx.session.upload(self.plan.deadman_body().encode(), self.plan.deadman_script, "0700")
        self.armed = True
        self.ctx.run(self.plan.arm())

    def disarm(self) -> None:
        """Cancel the timer if armed."""
        if self.armed:
            self.ctx.run(self.plan.disarm(), check=False)
            self.armed = False

    def fail(self, why: str, reload: bool, reprove: bool = False) -> NoReturn:
        """Restore the old files through the still-open session, prove again if asked, then fail the step."""
        undo = self.ctx.run(self.plan.rollback(reload), check=False)
        self.disarm()
        if not undo.ok:
            paths = ", ".join(f.path for f in self.tx.files)
            raise StepFailed(f"{why}; ROLLBACK FAILED ({undo.stderr.strip()}): check {paths}")
        note = "rolled back"
        if reprove and self.tx.prove is not None:
            try:
                again = self.tx.prove()
            except Exception as e:  # noqa: BLE001 - the rollback is done; report why the proof still fails
                again = f"{type(e).__name__}: {e}"
            note = (f"rolled back; {self.tx.prove_name} works again" if not again else
                    f"rolled back, but {self.tx.prove_name} still fails: {again}")
        raise StepFailed(f"{why}; {note}")

    def live(self) -> None:
        """Install, validate whole, check the effective value, reload, prove."""
        installed = self.ctx.run(self.plan.install(), check=False)
        if not installed.ok:
            self.fail(f"installing the files failed: {installed.stderr.strip()}", reload=False)
        whole = self.plan.whole()
        if whole:
            r = self.ctx.run(whole, check=False)
            if not r.ok:
                self.fail(f"{whole} rejects the whole config with the new files: {(r.stderr or r.stdout).strip()}",
                          reload=False)
        if self.tx.effective is not None:
            wrong = self.tx.effective()
            if wrong:
                self.fail(wrong, reload=False)
        reload = self.plan.reload()
        if reload:
            r = self.ctx.run(reload, check=False)
            if not r.ok:
                self.fail(f"reloading {self.tx.name} failed: {(r.stderr or r.stdout).strip()}", reload=True)
        if self.tx.prove is not None:
            failed = self.tx.prove()
            if failed:
                self.fail(failed, reload=True, reprove=True)


def run_transaction(ctx: TaskContext, tx: ConfigTransaction, stamp: str | None = None) -> None:
    """Carry the transaction out on ctx's host; raises StepFailed (after rolling back) on any failure."""
    run = _Run(ctx, tx, stamp or time.strftime("%Y%m%d%H%M%S"))
    run.stage()
    try:
        run.arm()
    except BaseException:
        run.disarm()
        ctx.run(run.plan.discard(), check=False)
        raise
    try:
        run.live()
    except StepFailed:
        raise
    except Exception as e:  # noqa: BLE001 - a bug or a lost connection: undo in-band if we can, else the dead-man
        run.fail(f"unexpected error while changing {tx.name}: {type(e).__name__}: {e}", reload=True, reprove=True)
    run.disarm()
