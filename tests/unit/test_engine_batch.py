"""A step's changes applied together (issue 12 part 1): exec counts on a fake session that counts them, and the
batched path against the one-by-one path (RunState.batch_changes=False) on real files in a temp dir: the same
files, changes, handlers and idempotency, in fewer round trips.

Stand-in: the host is this machine (the fake session runs each script with sh here, fed as the transport feeds it,
files on stdin); the same workload on real lab hosts is benchmarks/bench_first_run.py.
"""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

import pytest
from fake_host import FakeSession, run_here
from nornir.core.inventory import Host

from hive_nornir.engine.context import HostContext, RunState
from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.handlers import HandlerJournal
from hive_nornir.engine.outcome import HostOutcome
from hive_nornir.engine.passes import levels
from hive_nornir.facts import canned
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File
from hive_nornir.primitives.filesystem import Directory, Symlink
from hive_nornir.primitives.lines import BlockInFile, LineInFile
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.resources import ANY, conflict, overlaps, path
from hive_nornir.primitives.service import Service
from hive_nornir.primitives.sysctl import Sysctl
from hive_nornir.primitives.users import AuthorizedKeys, Group, User
from hive_nornir.transport import CONNECTION_NAME

NOBODY = pwd.getpwnam("nobody")
NOBODY_GROUP = grp.getgrgid(NOBODY.pw_gid).gr_name


class Connection:
    """What nornir keeps in host.connections."""

    def __init__(self, session: FakeSession) -> None:
        self.connection = session

    def close(self) -> None:
        self.connection.close()


def context(tmp_path: Path, *, batch: bool = True, check: bool = False) -> tuple[HostContext, FakeSession]:
    """A host context on this machine, facts already gathered, its own handler journal."""
    fake = FakeSession(run_here())
    host = Host(name="h0", hostname="127.0.0.1")
    host.connections[CONNECTION_NAME] = Connection(fake)  # type: ignore[assignment]
    state = tmp_path / f"state-{'batch' if batch else 'one'}"
    state.mkdir(exist_ok=True)
    run = RunState(nornir=None, check=check, context_dir=state,  # type: ignore[arg-type]
                   handlers=HandlerJournal(state / "handlers.json"), facts={"h0": canned()}, batch_changes=batch)
    ctx = HostContext(host, run, HostOutcome(host="h0", step="s"))
    ctx._session = fake  # type: ignore[assignment]
    return ctx, fake


def workload(root: Path) -> list[Primitive]:
    """Independent files, a directory and a file in it, a link to it, an edited file, a guarded command."""
    if not (root / "hosts").exists():
        (root / "hosts").write_text("127.0.0.1 localhost\n")
    return [
        File(path=str(root / "sshd_drop_in.conf"), content="PasswordAuthentication no\n", mode="0600",
             validate="grep -q PasswordAuthentication %s").with_notify("reload:ssh"),
        BlockInFile(str(root / "hosts"), block="10.160.0.4 p-hive0.perf1\n10.160.0.5 p-hive1.perf1"),
        LineInFile(str(root / "hosts"), "# managed"),
        Directory(str(root / "app"), mode="0750"),
        File(path=str(root / "app" / "app.conf"), content="port = 8080\n", owner=NOBODY.pw_name,
             group=NOBODY_GROUP).on_change(["true"]),
        Symlink(str(root / "current"), str(root / "app" / "app.conf")),
        File(path=str(root / "motd"), content="welcome\n", secret=True),
        Command(args=["touch", str(root / "app" / "stamp")], creates=str(root / "app" / "stamp")),
    ]


def tree(root: Path) -> dict[str, tuple[str, str, str]]:
    """Every path under root (backups left out): kind or content, mode, owner."""
    found: dict[str, tuple[str, str, str]] = {}
    for entry in sorted(root.rglob("*")):
        if entry.name.endswith(".hive~") or entry.name.startswith("state-"):
            continue
        rel = str(entry.relative_to(root))
        if rel.startswith("state-"):
            continue
        st = entry.lstat()
        what = ("-> " + os.readlink(entry) .replace(str(root), "ROOT")) if entry.is_symlink() else \
            ("dir" if entry.is_dir() else entry.read_text())
        found[rel] = (what, oct(st.st_mode & 0o7777), pwd.getpwuid(st.st_uid).pw_name)
    return found


def changes(ctx: HostContext, root: Path) -> list[tuple[str, str]]:
    """The outcome's changes (kind and summary, the temp dir named ROOT), sorted: the report lists them in the
    order they were applied, and a batch applies an independent later one before a waiting earlier one."""
    return sorted((c.ident.split("[")[0], c.summary.replace(str(root), "ROOT")) for c in ctx.outcome.changes)


def test_a_cold_step_costs_one_probe_and_one_apply_per_dependency_level(tmp_path: Path) -> None:
    """8 primitives, 8 changes: the directory's file and the command's guard wait for the directory, the hosts line
    for the hosts block; one by one it is one apply per change."""
    root = tmp_path / "batch"
    root.mkdir()
    ctx, fake = context(tmp_path)
    assert ctx.ensure(workload(root))
    assert len(ctx.outcome.changes) == 8
    # probe; apply drop-in, block, directory, link, motd (+ probe line, app.conf, command); apply those three
    assert fake.round_trips == len(fake.calls) == 3
    assert all(c.sudo for c in fake.calls)  # one sudo per exec, no separate install/mv exec per file

    one_root = tmp_path / "one"
    one_root.mkdir()
    one, one_fake = context(tmp_path, batch=False)
    assert one.ensure(workload(one_root))
    assert one_fake.round_trips == 1 + 8  # the probe, then each change with the probe of the rest in its exec


def test_batched_and_one_by_one_give_the_same_host_changes_and_handlers(tmp_path: Path) -> None:
    results = {}
    for batch in (True, False):
        root = tmp_path / ("batch" if batch else "one")
        root.mkdir()
        ctx, _fake = context(tmp_path, batch=batch)
        ctx.ensure(workload(root))
        handlers = ctx.run_state.handlers.pending("h0")
        again, again_fake = context(tmp_path, batch=batch)
        again.run_state.handlers = HandlerJournal(None)
        assert not again.ensure(workload(root)), changes(again, root)  # idempotent: the second run changes nothing
        assert again_fake.round_trips == 1  # and costs the one probe exec
        results[batch] = (tree(root), changes(ctx, root), handlers)
    assert results[True] == results[False]
    files, _changes, handlers = results[True]
    assert files["app/app.conf"] == ("port = 8080\n", "0o644", NOBODY.pw_name)
    assert files["hosts"][0] == ("127.0.0.1 localhost\n# BEGIN HIVE MANAGED BLOCK\n10.160.0.4 p-hive0.perf1\n"
                                 "10.160.0.5 p-hive1.perf1\n# END HIVE MANAGED BLOCK\n# managed\n")
    assert files["sshd_drop_in.conf"][1] == "0o600" and "app/stamp" in files
    assert handlers == ["reload:ssh", "run:true"]


def test_file_contents_travel_on_stdin_never_in_the_script(tmp_path: Path) -> None:
    ctx, fake = context(tmp_path)
    ctx.ensure([File(path=str(tmp_path / "secret"), content="s3cret-value\n", mode="0600", secret=True)])
    apply = fake.calls[-1]
    assert "s3cret-value" not in apply.command and "s3cret-value" in (apply.stdin or "")
    assert (tmp_path / "secret").read_text() == "s3cret-value\n"
    assert oct((tmp_path / "secret").stat().st_mode & 0o777) == "0o600"
    assert not list(Path("/var/tmp").glob(".hive-apply-*"))  # the staging dir went with the exec
    assert not [p for p in tmp_path.iterdir() if ".hive-" in p.name]  # no candidate left behind


@pytest.mark.parametrize("batch", [True, False])
def test_a_rejected_candidate_stops_the_batch_and_handlers_stay_exact(tmp_path: Path, batch: bool) -> None:
    """The second file's validation fails: the first is in place and owes its reload, the second owes its own
    (it began; as when one primitive fails alone), the third never ran and owes nothing, in both paths."""
    root = tmp_path / "files"
    root.mkdir()
    ctx, _fake = context(tmp_path, batch=batch)
    ctx.run_state.handlers.notify("h0", ["restart:owed-from-before"])
    items = [File(path=str(root / "a"), content="a\n").with_notify("reload:a"),
             File(path=str(root / "b"), content="b\n", validate="false %s").with_notify("reload:b"),
             File(path=str(root / "c"), content="c\n").with_notify("reload:c", "restart:owed-from-before")]
    with pytest.raises(StepFailed, match="candidate rejected by: false"):
        ctx.ensure(items)
    assert sorted(p.name for p in root.iterdir() if not p.name.endswith("hive~")) == ["a"]
    assert [c.ident for c in ctx.outcome.changes] == [f"file[{root}/a]", f"file[{root}/b]"]
    assert ctx.run_state.handlers.pending("h0") == ["restart:owed-from-before", "reload:a", "reload:b"]


def test_check_mode_plans_everything_from_one_probe(tmp_path: Path) -> None:
    root = tmp_path / "check"
    root.mkdir()
    ctx, fake = context(tmp_path, check=True)
    ctx.run_state.predicted.add("h0")
    assert ctx.ensure(workload(root))
    assert fake.round_trips == 1 and len(ctx.outcome.changes) == 8
    assert [c.assumed for c in ctx.outcome.changes].count(True) == 1  # app.conf: no app/ yet
    assert sorted(p.name for p in root.iterdir()) == ["hosts"]


def test_resources_overlap_by_path_ancestry_and_part() -> None:
    etc = path("/etc/sysctl.d")
    assert overlaps(etc, path("/etc/sysctl.d/99-hive.conf", "net.core.somaxconn"))
    assert overlaps(path("/etc/sysctl.d/99-hive.conf"), path("/etc/sysctl.d/99-hive.conf", "a"))
    assert not overlaps(path("/etc/sysctl.d/99-hive.conf", "a"), path("/etc/sysctl.d/99-hive.conf", "b"))
    assert not overlaps(path("/etc/hosts"), path("/etc/hostname")) and overlaps(path("/"), path("/etc/x"))
    assert overlaps(ANY, "accounts") and not overlaps("accounts", "units")
    assert not conflict(set(), {ANY}) and conflict({"accounts"}, {"units", "accounts"})


def test_the_readme_example_applies_in_four_passes() -> None:
    """The README's ensure on a fresh host: packages alone (they may write anything), then what needs no other
    change, then what needed the group or the directory, then the key that needed the user."""
    items: list[Primitive] = [Packages(["openssh-server"]), Group("ops"), User("alice", groups=["ops"]),
                              AuthorizedKeys("alice", ["ssh-ed25519 AAAA alice"]), Directory("/srv/app"),
                              File(path="/srv/app/app.conf", content="x\n"),
                              BlockInFile("/etc/hosts", block="10.160.0.4 h"), Sysctl("vm.swappiness", 10)]
    got = [[p.ident for p in level] for level in levels(items)]
    assert got == [["packages[openssh-server]"],
                   ["group[ops]", "directory[/srv/app]", "block[/etc/hosts:# BEGIN HIVE MANAGED BLOCK]",
                    "sysctl[vm.swappiness]"],
                   ["user[alice]", "file[/srv/app/app.conf]"],
                   ["authorized_keys[alice]"]]
    assert len(levels([Sysctl("vm.swappiness", 10), Sysctl("vm.overcommit_memory", 1)])) == 1  # own lines
    assert len(levels([LineInFile("/etc/x", "a"), LineInFile("/etc/x", "b")])) == 2  # one file: one after the other
    assert len(levels([Service("a", state="started"), Service("b", state="started")])) == 2  # a start starts others
    # install -d makes missing parents: a file beside the new directory's parent waits (ntp-client's chrony.conf)
    chrony = [Directory("/etc/chrony/sources.d"), LineInFile("/etc/chrony/chrony.conf", "sourcedir x")]
    assert len(levels(chrony)) == 2
    assert len(levels([Directory("/srv/app"), File(path="/etc/hosts", content="x\n")])) == 1
    assert len(levels([Sysctl("vm.swappiness", 10), File(path="/etc/sysctl.d/10-x.conf", content="x\n")])) == 2
