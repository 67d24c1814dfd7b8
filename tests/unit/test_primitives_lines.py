"""LineInFile/BlockInFile: edits planned from canned content for both families, then real probe round trips."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from probe_runner import run_probe

from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.base import Plan
from hive_nornir.primitives.lines import MAX_EDIT_BYTES, BlockInFile, LineInFile
from hive_nornir.primitives.probes import file_probe

FAMILIES = [canned("debian"), canned("redhat")]
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


# -- LineInFile --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("facts", FAMILIES)
def test_line_probe_fetches_stat_and_content(facts: Facts) -> None:
    probe = LineInFile("/etc/ssh/sshd_config", "UseDNS no").probe(facts)
    assert probe == file_probe("/etc/ssh/sshd_config", MAX_EDIT_BYTES)  # the shared probe, links followed
    assert "stat -L -c 'stat=%a %U %G %s %u %g' -- /etc/ssh/sshd_config" in probe and "base64 -w0" in probe
    assert str(MAX_EDIT_BYTES) in probe


@pytest.mark.parametrize("facts", FAMILIES)
def test_line_appended_keeping_mode_and_owner(facts: Facts) -> None:
    plan = LineInFile("/etc/x.conf", "b = 2").plan(facts, out("a = 1"))  # no final newline
    assert new_text(plan) == "a = 1\nb = 2\n"
    upload = plan.uploads[0]
    assert (upload.path, upload.mode, upload.owner, upload.group) == ("/etc/x.conf", "0640", "root", "adm")
    assert plan.summary == "add line to /etc/x.conf"
    assert plan.diff.startswith("--- /etc/x.conf (current)\n+++ /etc/x.conf (desired)\n")
    assert "+b = 2\n" in plan.diff and not plan.commands


@pytest.mark.parametrize("facts", FAMILIES)
def test_line_no_change_when_present(facts: Facts) -> None:
    assert not LineInFile("/etc/x.conf", "b = 2").plan(facts, out("a = 1\nb = 2\n")).changed
    assert not LineInFile("/etc/x.conf", "b = 2", regexp=r"^b\s*=").plan(facts, out("a = 1\nb = 2\n")).changed


def test_line_regexp_replaces_every_match_and_keeps_line_endings() -> None:
    plan = LineInFile("/etc/ssh/sshd_config", "PermitRootLogin no", regexp=r"^#?PermitRootLogin\b").plan(
        canned(), out("#PermitRootLogin prohibit-password\r\nPort 22\nPermitRootLogin yes"))
    assert new_text(plan) == "PermitRootLogin no\r\nPort 22\nPermitRootLogin no\n"
    assert plan.summary == "replace line in /etc/ssh/sshd_config"


def test_line_regexp_without_match_appends() -> None:
    plan = LineInFile("/etc/x", "UseDNS no", regexp=r"^UseDNS").plan(canned(), out("Port 22\n"))
    assert new_text(plan) == "Port 22\nUseDNS no\n"


def test_line_absent_removes_matches() -> None:
    plan = LineInFile("/etc/x", regexp=r"^server ", state="absent").plan(canned(), out("a\nserver 1\nb\nserver 2\n"))
    assert new_text(plan) == "a\nb\n" and plan.summary == "remove line from /etc/x"
    assert not LineInFile("/etc/x", "zzz", state="absent").plan(canned(), out("a\n")).changed
    assert not LineInFile("/etc/x", "zzz", state="absent").plan(canned(), out(None)).changed


def test_line_creates_missing_file_with_given_mode() -> None:
    plan = LineInFile("/etc/new.conf", "x", mode="0600").plan(canned("redhat"), out(None))
    upload = plan.uploads[0]
    assert (upload.content, upload.mode, upload.owner) == (b"x\n", "0600", "root")
    assert plan.diff.startswith("--- /dev/null (current)\n+++ /etc/new.conf (desired)\n")
    assert LineInFile("/etc/new.conf", "x", create=False).plan(canned(), out(None)).missing
    assert "directory" in LineInFile("/nope/new.conf", "x").plan(canned(), out(None, parent=False)).missing


def test_line_refuses_large_and_non_regular_files() -> None:
    big = LineInFile("/var/log/huge", "x").plan(canned(), f"stat=644 root root {MAX_EDIT_BYTES + 1}")
    assert "limited to" in big.error and not big.uploads
    assert "not a regular file" in LineInFile("/etc", "x").plan(canned(), "exists=notfile").error


def test_line_uploads_to_symlink_target() -> None:
    plan = LineInFile("/etc/resolv.conf", "options rotate").plan(
        canned(), out("nameserver 1.1.1.1\n") + "\nrealpath=/run/resolvconf/resolv.conf")
    assert plan.uploads[0].path == "/run/resolvconf/resolv.conf"


def test_line_preserves_undecodable_bytes() -> None:
    plan = LineInFile("/etc/latin1", "new").plan(canned(), out(b"caf\xe9\n"))
    assert plan.uploads[0].content == b"caf\xe9\nnew\n"


def test_secret_line_hides_diff() -> None:
    plan = LineInFile("/etc/x", "password=hunter2", secret=True).plan(canned(), out("a\n"))
    assert "hunter2" not in plan.diff and "hunter2" not in plan.summary
    assert "hunter2" not in LineInFile("/etc/x", "password=hunter2", secret=True).ident


@pytest.mark.parametrize("kwargs", [{"path": "etc/x", "line": "a"}, {"path": "/etc/x", "line": "a\nb"},
                                    {"path": "/etc/x"}, {"path": "/etc/x", "line": "a", "state": "gone"},
                                    {"path": "/etc/x", "line": "a", "mode": "rw"}])
def test_line_bad_input(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LineInFile(**kwargs)


# -- BlockInFile -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("facts", FAMILIES)
def test_block_inserted_at_end(facts: Facts) -> None:
    plan = BlockInFile("/etc/hosts", "10.0.0.1 a\n10.0.0.2 b\n").plan(facts, out("127.0.0.1 localhost\n"))
    assert new_text(plan) == f"127.0.0.1 localhost\n{BEGIN}\n10.0.0.1 a\n10.0.0.2 b\n{END}\n"
    assert plan.summary == "insert block in /etc/hosts"


@pytest.mark.parametrize("facts", FAMILIES)
def test_block_replaced_in_place_and_no_change(facts: Facts) -> None:
    current = f"head\n{BEGIN}\nold\n{END}\ntail\n"
    plan = BlockInFile("/etc/hosts", "new").plan(facts, out(current))
    assert new_text(plan) == f"head\n{BEGIN}\nnew\n{END}\ntail\n"
    assert plan.summary == "update block in /etc/hosts"
    assert "-old\n+new\n" in plan.diff
    assert not BlockInFile("/etc/hosts", "old").plan(facts, out(current)).changed


def test_block_absent_or_empty_removes_it() -> None:
    current = f"head\n{BEGIN}\nold\n{END}\ntail\n"
    for block in (BlockInFile("/etc/hosts", state="absent"), BlockInFile("/etc/hosts", "")):
        plan = block.plan(canned(), out(current))
        assert new_text(plan) == "head\ntail\n" and plan.summary == "remove block from /etc/hosts"
    assert not BlockInFile("/etc/hosts", state="absent").plan(canned(), out("head\n")).changed


def test_block_custom_marker_leaves_other_blocks() -> None:
    other = f"{BEGIN}\nkeep\n{END}\n"
    block = BlockInFile("/etc/hosts", "x", marker="# {mark} servers")
    assert new_text(block.plan(canned(), out(other))) == f"{other}# BEGIN servers\nx\n# END servers\n"


@pytest.mark.parametrize("facts", FAMILIES)
def test_block_inserted_before_bof_goes_on_top_then_stays_where_it_is(facts: Facts) -> None:
    block = BlockInFile("/etc/hosts", "10.0.0.1 a", insertbefore="BOF")
    plan = block.plan(facts, out("127.0.0.1 localhost\n"))
    assert new_text(plan) == f"{BEGIN}\n10.0.0.1 a\n{END}\n127.0.0.1 localhost\n"
    assert plan.summary == "insert block in /etc/hosts"
    assert not block.plan(facts, out(new_text(plan))).changed
    moved = f"127.0.0.1 localhost\n{BEGIN}\nold\n{END}\n"  # an existing block is updated in place
    assert new_text(block.plan(facts, out(moved))) == f"127.0.0.1 localhost\n{BEGIN}\n10.0.0.1 a\n{END}\n"
    created = BlockInFile("/etc/x", "y", insertbefore="BOF").plan(facts, out(None))
    assert new_text(created) == f"{BEGIN}\ny\n{END}\n"
    with pytest.raises(ValueError, match="BOF"):
        BlockInFile("/etc/hosts", "x", insertbefore="^127")


def test_block_unbalanced_markers_need_a_human() -> None:
    plan = BlockInFile("/etc/hosts", "x").plan(canned(), out(f"{BEGIN}\nhalf\n"))
    assert "unbalanced" in plan.error and not plan.uploads


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


def test_backup_can_be_turned_off_for_lines_and_blocks() -> None:
    """Issue 11 item 13: BlockInFile had no `backup`; every primitive that backs up can be told not to."""
    for item in (LineInFile("/etc/x.conf", "b = 2"), BlockInFile("/etc/x.conf", "b = 2")):
        assert item.plan(canned(), out("a = 1\n")).uploads[0].backup is True
    for item in (LineInFile("/etc/x.conf", "b = 2", backup=False), BlockInFile("/etc/x.conf", "b = 2", backup=False)):
        assert item.plan(canned(), out("a = 1\n")).uploads[0].backup is False


def test_real_dangling_symlink_is_refused_not_replaced(tmp_path: Path) -> None:
    link = tmp_path / "link.conf"
    link.symlink_to(tmp_path / "nowhere.conf")
    item = LineInFile(str(link), "a = 1")
    plan = item.plan(canned(), run_probe(item, canned()))
    assert "does not exist" in plan.error and not plan.uploads
