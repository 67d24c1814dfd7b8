"""Directory and Symlink planned from canned stat/readlink output, and applied for real inside a temp dir."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from probe_runner import run_probe

from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.filesystem import Directory, Symlink

FAMILIES = [canned("debian"), canned("redhat")]



def converge(primitive: Primitive, facts: Facts) -> list[str]:
    """probe -> plan -> run the commands under set -e (temp paths only); returns what ran."""
    plan = primitive.plan(facts, run_probe(primitive, facts))
    assert not plan.missing, plan.missing
    assert not plan.uploads
    if plan.commands:
        subprocess.run(["/bin/sh", "-ec", "\n".join(plan.commands)], check=True)
    return plan.commands


# -- Directory ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("facts", FAMILIES)
def test_directory_create(facts: Facts) -> None:
    d = Directory("/srv/data", mode="0750", owner="app", group="app")
    assert "stat -L -c" in d.probe(facts)
    plan = d.plan(facts, "type=none")
    assert plan.commands == ["install -d -m 0750 -o app -g app /srv/data"]
    assert plan.summary == "create directory /srv/data"
    assert Directory("/srv/x").plan(facts, "type=none").commands == ["install -d /srv/x"]


@pytest.mark.parametrize("facts", FAMILIES)
def test_directory_no_change_by_name_or_number(facts: Facts) -> None:
    out = "type=dir\nstat=750 app app 4096 1001 1001"
    assert not Directory("/srv/data", mode="0750", owner="app", group="app").plan(facts, out).changed
    assert not Directory("/srv/data", mode="750", owner="1001").plan(facts, out).changed
    assert not Directory("/srv/data").plan(facts, out).changed


def test_directory_fixes_mode_and_owner() -> None:
    plan = Directory("/srv/data", mode="0755", owner="app").plan(canned(), "type=dir\nstat=700 root root 4096 0 0")
    assert plan.commands == ["chmod 0755 /srv/data", "chown app /srv/data"]
    assert plan.summary == "/srv/data: mode 700 -> 0755, owner root:root -> app:root"
    only_group = Directory("/srv/data", group="adm").plan(canned(), "type=dir\nstat=755 root root 4096 0 0")
    assert only_group.commands == ["chown :adm /srv/data"]


def test_directory_absent_and_guards() -> None:
    plan = Directory("/srv/old/", state="absent").plan(canned(), "type=dir\nstat=755 root root 4096 0 0")
    assert plan.commands == ["rm -rf -- /srv/old"]
    assert Directory("/srv/link", state="absent").plan(canned(), "link=yes\ntype=dir").commands == [
        "rm -f -- /srv/link"]
    assert not Directory("/srv/old", state="absent").plan(canned(), "type=none").changed
    assert "not a directory" in Directory("/srv/f", state="absent").plan(canned(), "type=other").error
    assert "not a directory" in Directory("/srv/f").plan(canned(), "type=other").error


@pytest.mark.parametrize("path", ["/", "//", "/etc", "/usr/", "/var/lib", "/srv/../etc"])
def test_directory_never_removes_system_paths(path: str) -> None:
    with pytest.raises(ValueError, match="refusing"):
        Directory(path, state="absent")


@pytest.mark.parametrize("kwargs", [{"path": "srv"}, {"path": "/srv", "mode": "rwx"}, {"path": "/srv", "state": "x"}])
def test_directory_bad_input(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Directory(**kwargs)


# -- Symlink -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("facts", FAMILIES)
def test_symlink_plans(facts: Facts) -> None:
    link = Symlink("/etc/localtime", "/usr/share/zoneinfo/Etc/UTC")
    assert "readlink -- /etc/localtime" in link.probe(facts)
    assert not link.plan(facts, "link=/usr/share/zoneinfo/Etc/UTC").changed
    plan = link.plan(facts, "link=/usr/share/zoneinfo/Europe/Paris")
    assert plan.commands == ["ln -sfn -- /usr/share/zoneinfo/Etc/UTC /etc/localtime"]
    assert plan.diff == ("- /etc/localtime -> /usr/share/zoneinfo/Europe/Paris\n"
                         "+ /etc/localtime -> /usr/share/zoneinfo/Etc/UTC\n")
    assert link.plan(facts, "type=file").summary == "replace file /etc/localtime -> /usr/share/zoneinfo/Etc/UTC"
    assert link.plan(facts, "type=none\nparent=yes").commands == plan.commands
    assert "directory of" in link.plan(facts, "type=none").missing
    assert "is a directory" in link.plan(facts, "type=dir").error


def test_symlink_absent() -> None:
    link = Symlink("/usr/local/bin/tool", state="absent")
    assert link.plan(canned(), "link=/opt/tool").commands == ["rm -f -- /usr/local/bin/tool"]
    assert not link.plan(canned(), "type=none").changed
    assert "not a symlink" in link.plan(canned(), "type=file").error


def test_symlink_needs_target() -> None:
    with pytest.raises(ValueError):
        Symlink("/x")


# -- real round trips in a temp dir ------------------------------------------------------------------------
@pytest.mark.parametrize("facts", FAMILIES)
def test_real_directory_round_trip(tmp_path: Path, facts: Facts) -> None:
    path = tmp_path / "a b" / "c"
    d = Directory(str(path), mode="0710", owner="root", group="root")
    assert converge(d, facts) == [f"install -d -m 0710 -o root -g root '{path}'"]
    assert path.is_dir() and path.stat().st_mode & 0o7777 == 0o710
    assert converge(d, facts) == []
    path.chmod(0o755)
    assert converge(d, facts) == [f"chmod 0710 '{path}'"]
    assert converge(d, facts) == []
    gone = Directory(str(tmp_path / "a b"), state="absent")
    assert converge(gone, facts) == [f"rm -rf -- '{tmp_path / 'a b'}'"]
    assert not (tmp_path / "a b").exists() and converge(gone, facts) == []


@pytest.mark.parametrize("facts", FAMILIES)
def test_real_symlink_round_trip(tmp_path: Path, facts: Facts) -> None:
    path = tmp_path / "localtime"
    path.write_text("a regular file in the way\n")
    link = Symlink(str(path), "/usr/share/zoneinfo/Etc/UTC")
    assert len(converge(link, facts)) == 1
    assert path.is_symlink() and str(path.readlink()) == "/usr/share/zoneinfo/Etc/UTC"
    assert converge(link, facts) == []
    relink = Symlink(str(path), "../other")
    converge(relink, facts)
    assert str(path.readlink()) == "../other" and converge(relink, facts) == []
    converge(Symlink(str(path), state="absent"), facts)
    assert not path.exists() and not path.is_symlink()
    (tmp_path / "dir").mkdir()
    blocked = Symlink(str(tmp_path / "dir"), "/x")
    assert "is a directory" in blocked.plan(facts, run_probe(blocked, facts)).error


@pytest.mark.parametrize("facts", FAMILIES)
def test_symlink_requiring_its_target_never_dangles(tmp_path: Path, facts: Facts) -> None:
    """/etc/localtime to a zone the host's tzdata lacks (issue 10 item 11): missing, nothing linked."""
    zone = tmp_path / "zoneinfo" / "Asia" / "Tokyo"
    path = tmp_path / "localtime"
    link = Symlink(str(path), str(zone), require_target=True)
    plan = link.plan(facts, run_probe(link, facts))
    assert plan.missing == f"{zone} does not exist on this host; not linking {path} to it" and not plan.commands
    assert not path.is_symlink()
    zone.parent.mkdir(parents=True)
    zone.write_text("TZif")
    assert len(converge(link, facts)) == 1 and path.resolve() == zone
    assert converge(link, facts) == []
    relative = Symlink(str(path), "zoneinfo/Asia/Tokyo", require_target=True)  # relative to the link's dir
    assert len(converge(relative, facts)) == 1 and path.resolve() == zone
