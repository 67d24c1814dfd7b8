"""File and Template: the table (canned file_probe output in, plan out), then the real probe (this machine's /bin/sh):
symlinks followed, odd directory names, empty files."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from plan_cases import DEB, RH, Case, check_case, ids, on
from probe_runner import run_probe

from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.base import Upload
from hive_nornir.primitives.file import File, Template, TemplateError

FAMILIES = [DEB, RH]


def file_out(content: str | bytes | None = None, stat: str = "644 root root", sent: bool = True,
             realpath: str | None = None, parent: bool = True) -> str:
    """What file_probe prints: a regular file (its content sent when it differs), or none (`content=None`)."""
    if content is None:
        return f"exists=no\nparent={'yes' if parent else 'no'}"
    data = content.encode() if isinstance(content, str) else content
    lines = ["exists=yes", f"stat={stat} {len(data)} 0 0", *([f"realpath={realpath}"] if realpath else []),
             f"sha={hashlib.sha256(data).hexdigest()}"]
    return "\n".join([*lines, *([f"content={base64.b64encode(data).decode()}"] if sent else [])])


def new_file(path: str, content: str | bytes, mode: str = "0644", **kw: Any) -> Upload:
    """The upload File plans: the whole content, staged and renamed into place, backed up unless told not to."""
    data = content.encode() if isinstance(content, str) else content
    return Upload(path, data, mode=mode, **kw)


MOTD = File("/etc/motd", "hello\n")
SUDOERS = File("/etc/sudoers.d/ops", "%ops ALL=(ALL) NOPASSWD: ALL\n", mode="0440", validate="visudo -cf %s",
               backup=False)
TIMER = "/etc/systemd/system/hive-backup.timer"
TIMER_TEXT = ("# managed by hive_nornir (backup-tools)\n[Unit]\nDescription=nightly backup of the hive services\n\n"
              "[Timer]\nOnCalendar=*-*-* 03:00:00\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n")

CASES = [
    *on(FAMILIES, Case("create", MOTD, file_out(), uploads=[new_file("/etc/motd", "hello\n")],
                       summary="create /etc/motd", diff="--- /dev/null (current)\n+++ /etc/motd (desired)\n"
                                                        "@@ -0,0 +1 @@\n+hello\n")),
    Case("create-without-its-directory-is-missing", MOTD, file_out(parent=False),
         uploads=[new_file("/etc/motd", "hello\n")], changed=True, missing="directory of /etc/motd does not exist",
         notes="check mode may assume the directory an earlier step makes; a real run fails"),
    *on(FAMILIES, Case("no-change-by-hash", MOTD, file_out("hello\n", sent=False))),
    Case("no-change-when-the-mode-reads-0644", MOTD, file_out("hello\n", stat="0644 root root", sent=False)),
    Case("update-shows-the-diff", MOTD, file_out("bye\n"), uploads=[new_file("/etc/motd", "hello\n")],
         summary="update /etc/motd", diff="--- /etc/motd (current)\n+++ /etc/motd (desired)\n@@ -1 +1 @@\n-bye\n"
                                          "+hello\n"),
    Case("update-of-a-large-file-is-by-hash-only", MOTD, file_out("bye\n", sent=False),
         uploads=[new_file("/etc/motd", "hello\n")], diff="(content differs; file too large to diff)"),
    Case("mode-fixed-without-upload", MOTD, file_out("hello\n", stat="600 root root", sent=False),
         commands=["chmod 0644 /etc/motd"], summary="/etc/motd: mode 600 -> 0644", diff="mode 600 -> 0644"),
    Case("owner-fixed-without-upload", MOTD, file_out("hello\n", stat="644 app adm", sent=False),
         commands=["chown root:root /etc/motd"], summary="/etc/motd: owner app:adm -> root:root"),
    Case("through-a-symlink-the-target-is-chmodded", MOTD,
         file_out("hello\n", stat="600 root root", sent=False, realpath="/run/motd"),
         commands=["chmod 0644 /run/motd"], summary="/etc/motd -> /run/motd: mode 600 -> 0644"),
    Case("through-a-symlink-the-target-gets-the-content", MOTD, file_out("bye\n", realpath="/run/motd"),
         uploads=[new_file("/run/motd", "hello\n")], summary="update /etc/motd -> /run/motd"),
    Case("a-dangling-symlink-is-refused", MOTD, "exists=dangling\nrealpath=/etc/nowhere",
         error="/etc/motd is a symlink to /etc/nowhere, which does not exist: create the target or remove the link"),
    Case("a-directory-in-the-way-is-refused", MOTD, "exists=notfile",
         error="/etc/motd exists and is not a regular file"),
    Case("no-probe-output-is-an-error", MOTD, "", error="cannot inspect /etc/motd (probe printed nothing useful)"),
    Case("a-secret-file-hides-its-diff", File("/etc/app.env", "PW=x\n", mode="0600", secret=True),
         file_out("PW=y\n", stat="600 root root"), uploads=[new_file("/etc/app.env", "PW=x\n", mode="0600")],
         diff="(content of /etc/app.env hidden: secret)"),
    Case("binary-content-says-so", File("/etc/blob", b"\xff\x00"), file_out(b"\x00"),
         uploads=[new_file("/etc/blob", b"\xff\x00")], diff="(binary content of /etc/blob differs)"),
    Case("validate-mode-and-no-backup-travel-with-the-upload", SUDOERS, file_out(),
         uploads=[new_file("/etc/sudoers.d/ops", "%ops ALL=(ALL) NOPASSWD: ALL\n", mode="0440",
                           validate="visudo -cf %s", backup=False)]),
    Case("template-renders-the-packaged-template",
         Template(TIMER, "repository/backup-timer.j2", {"on_calendar": "*-*-* 03:00:00"}), file_out(),
         uploads=[new_file(TIMER, TIMER_TEXT)], summary=f"create {TIMER}"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_plan(case: Case) -> None:
    check_case(case)


def test_template_with_a_missing_variable_fails_instead_of_rendering_empty() -> None:
    """Rendered when its step probes it (so the run's project templates/ is searched): the error names both."""
    timer = Template(TIMER, "repository/backup-timer.j2", {})
    with pytest.raises(TemplateError, match=r"template repository/backup-timer\.j2: 'on_calendar' is undefined"):
        timer.probe(canned())


def me() -> tuple[str, str]:
    """This test's own user and group: a File owned by them needs no chown here."""
    import grp
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


@pytest.mark.parametrize("facts", FAMILIES)
def test_file_through_a_symlink_manages_the_target_and_is_stable(tmp_path: Path, facts: Facts) -> None:
    """Issue 10 item 17: stat without -L saw the link's 777 and planned a chmod on every run."""
    user, group = me()
    target = tmp_path / "real.conf"
    target.write_text("a=1\n")
    target.chmod(0o640)
    link = tmp_path / "link.conf"
    link.symlink_to(target)
    prim = File(path=str(link), content="a=1\n", mode="0640", owner=user, group=group)
    assert not prim.plan(facts, run_probe(prim, facts)).changed  # was: chmod 0640 every run

    target.chmod(0o600)
    plan = prim.plan(facts, run_probe(prim, facts))
    assert plan.commands == [f"chmod 0640 {target}"] and not plan.uploads
    assert plan.summary == f"{link} -> {target}: mode 600 -> 0640"

    target.chmod(0o640)
    changed = File(path=str(link), content="a=2\n", mode="0640", owner=user, group=group)
    plan = changed.plan(facts, run_probe(changed, facts))
    [upload] = plan.uploads
    assert upload.path == str(target)  # the link stays a link; its target gets the new content
    assert "-a=1" in plan.diff and "+a=2" in plan.diff


def test_file_on_a_dangling_symlink_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "link.conf"
    link.symlink_to(tmp_path / "nowhere.conf")
    prim = File(path=str(link), content="x\n")
    plan = prim.plan(canned(), run_probe(prim, canned()))
    assert "does not exist" in plan.error and "nowhere.conf" in plan.error and not plan.uploads


@pytest.mark.parametrize("facts", FAMILIES)
def test_file_in_a_directory_with_a_space_is_created(tmp_path: Path, facts: Facts) -> None:
    """Issue 10 item 17: `[ -d $(dirname p) ]` split the name, so the directory counted as missing."""
    folder = tmp_path / "my dir"
    folder.mkdir()
    prim = File(path=str(folder / "x.conf"), content="x\n")
    plan = prim.plan(facts, run_probe(prim, facts))
    assert plan.changed and not plan.missing and plan.summary == f"create {folder}/x.conf"
    gone = File(path=str(tmp_path / "no such dir" / "x.conf"), content="x\n")
    assert gone.plan(facts, run_probe(gone, facts)).missing.startswith("directory of")


def test_empty_existing_file_shows_a_diff(tmp_path: Path) -> None:
    """Issue 10 item 17: an empty file's `old=` was empty and read as "too large to diff"."""
    target = tmp_path / "empty.conf"
    target.write_bytes(b"")
    prim = File(path=str(target), content="line\n")
    plan = prim.plan(canned(), run_probe(prim, canned()))
    assert "too large" not in plan.diff and "+line" in plan.diff
    assert plan.summary == f"update {target}"


def test_unchanged_file_sends_no_content(tmp_path: Path) -> None:
    """The hash is compared on the host: an unchanged file costs no base64 transfer."""
    target = tmp_path / "same.conf"
    target.write_text("same\n")
    out = run_probe(File(path=str(target), content="same\n"), canned())
    assert "content=" not in out and "sha=" in out


def test_every_reader_of_the_file_probe_plans_from_its_real_output(tmp_path: Path) -> None:
    """The shared file probe feeds File, the line edits and the firewall's rules block: all read a real file."""
    from hive_nornir.primitives.lines import LineInFile
    from hive_nornir.tasks.net.firewall import RulesBlock

    rules = tmp_path / "rules.v4"
    rules.write_text("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n")
    items = [File(path=str(rules), content="x\n"), LineInFile(str(rules), "# x"),
             RulesBlock(path=str(rules), marker="# {mark} TEST", lines=("-A INPUT -j ACCEPT",), validate=None)]
    for item in items:
        plan = item.plan(canned(), run_probe(item, canned()))
        assert not plan.error and plan.changed and plan.uploads[0].path == str(rules), (item, plan.error)
