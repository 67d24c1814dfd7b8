"""Directory and Symlink planned from canned stat/readlink output, and applied for real inside a temp dir."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from plan_cases import DEB, RH, Case, check_case, ids, on
from probe_runner import run_probe

from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.filesystem import Directory, Symlink

FAMILIES = [DEB, RH]



def converge(primitive: Primitive, facts: Facts) -> list[str]:
    """probe -> plan -> run the commands under set -e (temp paths only); returns what ran."""
    plan = primitive.plan(facts, run_probe(primitive, facts))
    assert not plan.missing, plan.missing
    assert not plan.uploads
    if plan.commands:
        subprocess.run(["/bin/sh", "-ec", "\n".join(plan.commands)], check=True)
    return plan.commands


# -- the table ----------------------------------------------------------------------------------------------
DATA = Directory("/srv/data", mode="0750", owner="app", group="app")
LOCALTIME = Symlink("/etc/localtime", "/usr/share/zoneinfo/Etc/UTC")
UTC_LINK = "ln -sfn -- /usr/share/zoneinfo/Etc/UTC /etc/localtime"
TOOL_GONE = Symlink("/usr/local/bin/tool", state="absent")

CASES = [
    *on(FAMILIES, Case("dir-create", DATA, "type=none", commands=["install -d -m 0750 -o app -g app /srv/data"],
                       summary="create directory /srv/data", diff="+ /srv/data/ (mode 0750, owner app, group app)\n")),
    *on(FAMILIES, Case("dir-create-plain", Directory("/srv/x"), "type=none", commands=["install -d /srv/x"])),
    *on(FAMILIES, Case("dir-no-change-by-name", DATA, "type=dir\nstat=750 app app 4096 1001 1001")),
    *on(FAMILIES, Case("dir-no-change-by-number", Directory("/srv/data", mode="750", owner="1001"),
                       "type=dir\nstat=750 app app 4096 1001 1001")),
    *on(FAMILIES, Case("dir-no-change-when-nothing-asked", Directory("/srv/data"),
                       "type=dir\nstat=750 app app 4096 1001 1001")),
    Case("dir-fixes-mode-and-owner", Directory("/srv/data", mode="0755", owner="app"),
         "type=dir\nstat=700 root root 4096 0 0", commands=["chmod 0755 /srv/data", "chown app /srv/data"],
         summary="/srv/data: mode 700 -> 0755, owner root:root -> app:root",
         diff="~ mode 700 -> 0755\n~ owner root:root -> app:root\n"),
    Case("dir-fixes-only-the-group", Directory("/srv/data", group="adm"), "type=dir\nstat=755 root root 4096 0 0",
         commands=["chown :adm /srv/data"], summary="/srv/data: owner root:root -> root:adm"),
    Case("dir-absent-removes-the-tree", Directory("/srv/old/", state="absent"),
         "type=dir\nstat=755 root root 4096 0 0", commands=["rm -rf -- /srv/old"],
         summary="remove directory /srv/old", diff="- /srv/old/\n"),
    Case("dir-absent-on-a-symlink-removes-only-the-link", Directory("/srv/link", state="absent"),
         "link=yes\ntype=dir", commands=["rm -f -- /srv/link"], summary="remove symlink /srv/link"),
    Case("dir-absent-and-gone", Directory("/srv/old", state="absent"), "type=none"),
    Case("dir-absent-refuses-a-file", Directory("/srv/f", state="absent"), "type=other",
         error="/srv/f is not a directory; not removing it"),
    Case("dir-refuses-a-file-in-the-way", Directory("/srv/f"), "type=other",
         error="/srv/f exists and is not a directory"),
    *on(FAMILIES, Case("link-in-place", LOCALTIME, "link=/usr/share/zoneinfo/Etc/UTC")),
    *on(FAMILIES, Case("link-retargeted", LOCALTIME, "link=/usr/share/zoneinfo/Europe/Paris", commands=[UTC_LINK],
                       summary="/etc/localtime -> /usr/share/zoneinfo/Etc/UTC (was /usr/share/zoneinfo/Europe/Paris)",
                       diff="- /etc/localtime -> /usr/share/zoneinfo/Europe/Paris\n"
                            "+ /etc/localtime -> /usr/share/zoneinfo/Etc/UTC\n")),
    *on(FAMILIES, Case("link-replaces-a-file", LOCALTIME, "type=file", commands=[UTC_LINK],
                       summary="replace file /etc/localtime -> /usr/share/zoneinfo/Etc/UTC",
                       diff="- /etc/localtime (file)\n+ /etc/localtime -> /usr/share/zoneinfo/Etc/UTC\n")),
    *on(FAMILIES, Case("link-created", LOCALTIME, "type=none\nparent=yes", commands=[UTC_LINK],
                       summary="create symlink /etc/localtime -> /usr/share/zoneinfo/Etc/UTC")),
    *on(FAMILIES, Case("link-without-its-directory-is-missing", LOCALTIME, "type=none",
                       missing="directory of /etc/localtime does not exist")),
    *on(FAMILIES, Case("link-never-replaces-a-directory", LOCALTIME, "type=dir",
                       error="/etc/localtime is a directory; cannot replace it with a symlink")),
    Case("link-absent-removes", TOOL_GONE, "link=/opt/tool", commands=["rm -f -- /usr/local/bin/tool"],
         summary="remove symlink /usr/local/bin/tool", diff="- /usr/local/bin/tool -> /opt/tool\n"),
    Case("link-absent-and-gone", TOOL_GONE, "type=none"),
    Case("link-absent-refuses-a-file", TOOL_GONE, "type=file",
         error="/usr/local/bin/tool is not a symlink; not removing it"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_plan(case: Case) -> None:
    check_case(case)


# -- Directory ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("facts", FAMILIES)
def test_directory_probe_stats_the_path(facts: Facts) -> None:
    assert "stat -L -c" in DATA.probe(facts)


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
def test_symlink_probe_reads_the_link(facts: Facts) -> None:
    assert "readlink -- /etc/localtime" in LOCALTIME.probe(facts)


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
