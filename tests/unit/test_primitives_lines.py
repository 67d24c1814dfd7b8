"""LineInFile/BlockInFile: edits planned from canned content for both families, then real probe round trips."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from plan_cases import DEB, RH, Case, check_case, ids, on
from probe_runner import run_probe

from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.base import Plan, Upload
from hive_nornir.primitives.lines import MAX_EDIT_BYTES, BlockInFile, LineInFile
from hive_nornir.primitives.probes import file_probe

FAMILIES = [DEB, RH]
BEGIN, END = "# BEGIN HIVE MANAGED BLOCK", "# END HIVE MANAGED BLOCK"



def out(content: str | bytes | None, stat: str = "640 root adm", parent: bool = True) -> str:
    """Probe output as the real probe prints it."""
    if content is None:
        return "exists=no" + ("\nparent=yes" if parent else "")
    data = content.encode() if isinstance(content, str) else content
    return f"stat={stat} {len(data)}\ncontent={base64.b64encode(data).decode()}"


def new_text(plan: Plan) -> str:
    [upload] = plan.uploads
    return upload.content.decode()


def edit(path: str, content: str | bytes, mode: str = "0640", group: str = "adm", backup: bool = True) -> Upload:
    """The file an edit installs: the whole new content, keeping the file's mode and owner, backed up."""
    data = content.encode() if isinstance(content, str) else content
    return Upload(path, data, mode=mode, owner="root", group=group, backup=backup)


def udiff(path: str, hunk: str, old: str | None = None) -> str:
    """The unified diff an edit shows (`old` names the current side when it is not the path)."""
    return f"--- {old or path} (current)\n+++ {path} (desired)\n{hunk}"


SSHD = "/etc/ssh/sshd_config"
BLOCK_FILE = f"head\n{BEGIN}\nold\n{END}\ntail\n"
HOSTS_BOF = BlockInFile("/etc/hosts", "10.0.0.1 a", insertbefore="BOF")

LINE_CASES = [
    *on(FAMILIES, Case("appended-keeping-mode-and-owner", LineInFile("/etc/x.conf", "b = 2"), out("a = 1"),
                       uploads=[edit("/etc/x.conf", "a = 1\nb = 2\n")], summary="add line to /etc/x.conf",
                       diff=udiff("/etc/x.conf", "@@ -1 +1,2 @@\n-a = 1\n\\ No newline at end of file\n+a = 1\n"
                                                 "+b = 2\n"),
                       notes="the current file has no final newline")),
    *on(FAMILIES, Case("no-change-when-present", LineInFile("/etc/x.conf", "b = 2"), out("a = 1\nb = 2\n"))),
    *on(FAMILIES, Case("no-change-when-the-regexp-line-is-right", LineInFile("/etc/x.conf", "b = 2", regexp=r"^b\s*="),
                       out("a = 1\nb = 2\n"))),
    Case("regexp-replaces-every-match-keeping-line-endings",
         LineInFile(SSHD, "PermitRootLogin no", regexp=r"^#?PermitRootLogin\b"),
         out("#PermitRootLogin prohibit-password\r\nPort 22\nPermitRootLogin yes"),
         uploads=[edit(SSHD, "PermitRootLogin no\r\nPort 22\nPermitRootLogin no\n")],
         summary=f"replace line in {SSHD}"),
    Case("regexp-without-match-appends", LineInFile("/etc/x", "UseDNS no", regexp=r"^UseDNS"), out("Port 22\n"),
         uploads=[edit("/etc/x", "Port 22\nUseDNS no\n")], summary="add line to /etc/x"),
    Case("absent-removes-every-match", LineInFile("/etc/x", regexp=r"^server ", state="absent"),
         out("a\nserver 1\nb\nserver 2\n"), uploads=[edit("/etc/x", "a\nb\n")], summary="remove line from /etc/x",
         diff=udiff("/etc/x", "@@ -1,4 +1,2 @@\n a\n-server 1\n b\n-server 2\n")),
    Case("absent-and-not-there", LineInFile("/etc/x", "zzz", state="absent"), out("a\n")),
    Case("absent-and-no-file", LineInFile("/etc/x", "zzz", state="absent"), out(None)),
    Case("creates-a-missing-file-with-the-given-mode", LineInFile("/etc/new.conf", "x", mode="0600"), out(None),
         facts=RH, uploads=[edit("/etc/new.conf", "x\n", mode="0600", group="root")],
         summary="create /etc/new.conf with line", diff=udiff("/etc/new.conf", "@@ -0,0 +1 @@\n+x\n", "/dev/null")),
    Case("create-false-is-missing", LineInFile("/etc/new.conf", "x", create=False), out(None),
         missing="/etc/new.conf does not exist (create=False)"),
    Case("no-directory-is-missing", LineInFile("/nope/new.conf", "x"), out(None, parent=False),
         missing="directory of /nope/new.conf does not exist"),
    Case("refuses-a-large-file", LineInFile("/var/log/huge", "x"), f"stat=644 root root {MAX_EDIT_BYTES + 1}",
         error=f"/var/log/huge is {MAX_EDIT_BYTES + 1} bytes: line/block edits are limited to {MAX_EDIT_BYTES} "
               "bytes; manage it as a whole File instead"),
    Case("refuses-a-non-regular-file", LineInFile("/etc", "x"), "exists=notfile",
         error="/etc exists and is not a regular file"),
    Case("uploads-to-the-symlink-target", LineInFile("/etc/resolv.conf", "options rotate"),
         out("nameserver 1.1.1.1\n") + "\nrealpath=/run/resolvconf/resolv.conf",
         uploads=[edit("/run/resolvconf/resolv.conf", "nameserver 1.1.1.1\noptions rotate\n")]),
    Case("preserves-undecodable-bytes", LineInFile("/etc/latin1", "new"), out(b"caf\xe9\n"),
         uploads=[edit("/etc/latin1", b"caf\xe9\nnew\n")]),
    Case("a-secret-line-hides-the-diff", LineInFile("/etc/x", "password=hunter2", secret=True), out("a\n"),
         uploads=[edit("/etc/x", "a\npassword=hunter2\n")], summary="add line to /etc/x",
         diff="(content of /etc/x hidden: secret)"),
    Case("backup-can-be-turned-off", LineInFile("/etc/x.conf", "b = 2", backup=False), out("a = 1\n"),
         uploads=[edit("/etc/x.conf", "a = 1\nb = 2\n", backup=False)],
         notes="issue 11 item 13: every primitive that backs up can be told not to"),
]

BLOCK_CASES = [
    *on(FAMILIES, Case("inserted-at-the-end", BlockInFile("/etc/hosts", "10.0.0.1 a\n10.0.0.2 b\n"),
                       out("127.0.0.1 localhost\n"),
                       uploads=[edit("/etc/hosts", f"127.0.0.1 localhost\n{BEGIN}\n10.0.0.1 a\n10.0.0.2 b\n{END}\n")],
                       summary="insert block in /etc/hosts")),
    *on(FAMILIES, Case("replaced-in-place", BlockInFile("/etc/hosts", "new"), out(BLOCK_FILE),
                       uploads=[edit("/etc/hosts", f"head\n{BEGIN}\nnew\n{END}\ntail\n")],
                       summary="update block in /etc/hosts",
                       diff=udiff("/etc/hosts", f"@@ -1,5 +1,5 @@\n head\n {BEGIN}\n-old\n+new\n {END}\n tail\n"))),
    *on(FAMILIES, Case("no-change", BlockInFile("/etc/hosts", "old"), out(BLOCK_FILE))),
    Case("absent-removes-it", BlockInFile("/etc/hosts", state="absent"), out(BLOCK_FILE),
         uploads=[edit("/etc/hosts", "head\ntail\n")], summary="remove block from /etc/hosts"),
    Case("empty-removes-it", BlockInFile("/etc/hosts", ""), out(BLOCK_FILE),
         uploads=[edit("/etc/hosts", "head\ntail\n")], summary="remove block from /etc/hosts"),
    Case("absent-and-not-there", BlockInFile("/etc/hosts", state="absent"), out("head\n")),
    Case("a-custom-marker-leaves-other-blocks", BlockInFile("/etc/hosts", "x", marker="# {mark} servers"),
         out(f"{BEGIN}\nkeep\n{END}\n"),
         uploads=[edit("/etc/hosts", f"{BEGIN}\nkeep\n{END}\n# BEGIN servers\nx\n# END servers\n")]),
    *on(FAMILIES, Case("before-bof-goes-on-top", HOSTS_BOF, out("127.0.0.1 localhost\n"),
                       uploads=[edit("/etc/hosts", f"{BEGIN}\n10.0.0.1 a\n{END}\n127.0.0.1 localhost\n")],
                       summary="insert block in /etc/hosts")),
    *on(FAMILIES, Case("before-bof-stays-where-it-is", HOSTS_BOF,
                       out(f"{BEGIN}\n10.0.0.1 a\n{END}\n127.0.0.1 localhost\n"))),
    *on(FAMILIES, Case("before-bof-updates-an-existing-block-in-place", HOSTS_BOF,
                       out(f"127.0.0.1 localhost\n{BEGIN}\nold\n{END}\n"),
                       uploads=[edit("/etc/hosts", f"127.0.0.1 localhost\n{BEGIN}\n10.0.0.1 a\n{END}\n")])),
    *on(FAMILIES, Case("before-bof-creates-the-file", BlockInFile("/etc/x", "y", insertbefore="BOF"), out(None),
                       uploads=[edit("/etc/x", f"{BEGIN}\ny\n{END}\n", mode="0644", group="root")],
                       summary="create /etc/x with block")),
    Case("unbalanced-markers-need-a-human", BlockInFile("/etc/hosts", "x"), out(f"{BEGIN}\nhalf\n"),
         error=f"/etc/hosts: markers '{BEGIN}'/'{END}' are unbalanced (1 BEGIN, 0 END); fix the file by hand"),
    Case("backup-can-be-turned-off", BlockInFile("/etc/x.conf", "b = 2", backup=False), out("a = 1\n"),
         uploads=[edit("/etc/x.conf", f"a = 1\n{BEGIN}\nb = 2\n{END}\n", backup=False)],
         notes="issue 11 item 13: BlockInFile had no `backup`"),
]

CASES = [*(replace(c, id=f"line-{c.id}") for c in LINE_CASES), *(replace(c, id=f"block-{c.id}") for c in BLOCK_CASES)]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_plan(case: Case) -> None:
    check_case(case)


# -- LineInFile --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("facts", FAMILIES)
def test_line_probe_fetches_stat_and_content(facts: Facts) -> None:
    probe = LineInFile("/etc/ssh/sshd_config", "UseDNS no").probe(facts)
    assert probe == file_probe("/etc/ssh/sshd_config", MAX_EDIT_BYTES)  # the shared probe, links followed
    assert "stat -L -c 'stat=%a %U %G %s' -- /etc/ssh/sshd_config" in probe and "base64 -w0" in probe
    assert str(MAX_EDIT_BYTES) in probe


def test_secret_line_is_hidden_from_its_ident() -> None:
    assert "hunter2" not in LineInFile("/etc/x", "password=hunter2", secret=True).ident


@pytest.mark.parametrize("kwargs", [{"path": "etc/x", "line": "a"}, {"path": "/etc/x", "line": "a\nb"},
                                    {"path": "/etc/x"}, {"path": "/etc/x", "line": "a", "state": "gone"},
                                    {"path": "/etc/x", "line": "a", "mode": "rw"}])
def test_line_bad_input(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LineInFile(**kwargs)


# -- BlockInFile -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("facts", FAMILIES)
def test_block_before_bof_is_stable_on_its_own_output(facts: Facts) -> None:
    plan = HOSTS_BOF.plan(facts, out("127.0.0.1 localhost\n"))
    assert not HOSTS_BOF.plan(facts, out(new_text(plan))).changed


def test_block_insertbefore_is_only_bof() -> None:
    with pytest.raises(ValueError, match="BOF"):
        BlockInFile("/etc/hosts", "x", insertbefore="^127")


def test_block_marker_must_have_mark() -> None:
    with pytest.raises(ValueError):
        BlockInFile("/etc/hosts", "x", marker="# managed")


# -- real probes and round trips in a temp dir -------------------------------------------------------------
@pytest.mark.parametrize("facts", FAMILIES)
def test_real_round_trip(tmp_path: Path, facts: Facts) -> None:
    """probe -> plan -> install the upload -> probe again: the second plan has nothing to do."""
    target = tmp_path / "it's a file.conf"  # a quote and a space: quoting must hold
    items: list[LineInFile | BlockInFile] = [
        LineInFile(str(target), "a = 1", mode="0600"),
        LineInFile(str(target), "b = 2", regexp=r"^b\s*="),
        BlockInFile(str(target), "x\ny"),
    ]
    for item in items:
        plan = item.plan(facts, run_probe(item, facts))
        assert plan.changed, item
        [upload] = plan.uploads
        target.write_bytes(upload.content)
        target.chmod(int(upload.mode, 8))
        assert not item.plan(facts, run_probe(item, facts)).changed
    assert target.read_text() == f"a = 1\nb = 2\n{BEGIN}\nx\ny\n{END}\n"
    target.write_text("b=3\n" + target.read_text())
    plan = items[1].plan(facts, run_probe(items[1], facts))
    assert plan.uploads[0].mode == "0600"  # kept from the real file
    assert plan.uploads[0].content.decode().count("b = 2") == 2


def test_real_probe_missing_and_large(tmp_path: Path) -> None:
    missing = LineInFile(str(tmp_path / "none" / "x"), "a")
    assert missing.plan(canned(), run_probe(missing, canned())).missing == f"directory of {missing.path} does not exist"
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MAX_EDIT_BYTES + 10))
    out_text = run_probe(LineInFile(str(big), "a"), canned())
    assert "content=" not in out_text  # the probe does not ship big files
    assert "limited to" in LineInFile(str(big), "a").plan(canned(), out_text).error
    assert "not a regular file" in LineInFile(str(tmp_path), "a").plan(
        canned(), run_probe(LineInFile(str(tmp_path), "a"), canned())).error


def test_real_dangling_symlink_is_refused_not_replaced(tmp_path: Path) -> None:
    link = tmp_path / "link.conf"
    link.symlink_to(tmp_path / "nowhere.conf")
    item = LineInFile(str(link), "a = 1")
    plan = item.plan(canned(), run_probe(item, canned()))
    assert "does not exist" in plan.error and not plan.uploads


def test_every_line_edit_primitive_takes_backup() -> None:
    """Every primitive whose upload makes a backup can be told not to, task-local ones included."""
    import dataclasses

    import hive_nornir.tasks.host.base_el
    import hive_nornir.tasks.host.ntp_client
    import hive_nornir.tasks.storage.drbd  # noqa: F401 - their _TextEdit subclasses register here
    from hive_nornir.primitives.file import File
    from hive_nornir.primitives.lines import _TextEdit

    kinds: list[type[Any]] = [File, *_TextEdit.__subclasses__()]
    assert len(kinds) >= 6
    missing = [k.__name__ for k in kinds if "backup" not in {f.name for f in dataclasses.fields(k)}]
    assert missing == []
