"""File through the real probe (this machine's /bin/sh): symlinks followed, odd directory names, empty files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from probe_runner import run_probe

from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.file import File

FAMILIES = [canned("debian"), canned("redhat")]


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
