"""hive_timezone and hive_users/hive_user_groups are checked with the site (issue 10 item 11), before any host."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hive_nornir.site import SiteError, SiteIssue, load_site
from hive_nornir.site.kinds import controller_timezones
from hive_nornir.tasks.host.users import user_primitives

SITE = ("plugin: hive_inventory\nname: t\nstages:\n  private:\n    provider: prepared\n"
        "    cidr: 10.98.0.0/24\n")
needs_tzdata = pytest.mark.skipif(not controller_timezones(), reason="this controller has no tz database")


def load_with(tmp_path: Path, all_yml: str) -> Path:
    inv = tmp_path / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hive.yml").write_text(SITE)
    (inv / "group_vars" / "all.yml").write_text(textwrap.dedent(all_yml))
    return inv / "hive.yml"


def issues(tmp_path: Path, all_yml: str) -> list[SiteIssue]:
    with pytest.raises(SiteError) as info:
        load_site(load_with(tmp_path, all_yml))
    return list(info.value.issues)


def by_key(found: list[SiteIssue]) -> dict[str, SiteIssue]:
    return {i.key: i for i in found}


@needs_tzdata
def test_misspelt_timezone_names_the_close_zone(tmp_path: Path) -> None:
    (issue,) = issues(tmp_path, "hive_timezone: Asia/Tokio\n")
    assert (issue.line, issue.key, issue.value) == (1, "hive_timezone", "Asia/Tokio")
    assert "is not in the tz database (did you mean 'Asia/Tokyo'?)" in issue.problem


@pytest.mark.parametrize("zone", ["Asia/Tokyo'", '"Asia/Tokyo"', "Asia/Tokyo; rm -rf /", "../../etc/passwd",
                                  "/etc/passwd", "Asia Tokyo", "", "Asia//Tokyo"])
def test_timezone_that_is_no_zone_name_is_refused(tmp_path: Path, zone: str) -> None:
    (issue,) = issues(tmp_path, f"hive_timezone: {zone!r}\n")
    assert issue.key == "hive_timezone" and issue.problem == "is not a time zone name"


@needs_tzdata
@pytest.mark.parametrize("zone", ["Asia/Tokyo", "Etc/UTC", "UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+9"])
def test_real_zones_load(tmp_path: Path, zone: str) -> None:
    assert load_site(load_with(tmp_path, f"hive_timezone: {zone}\n")).group_vars["all"]["hive_timezone"] == zone


def test_users_and_groups_are_checked_as_the_users_step_reads_them(tmp_path: Path) -> None:
    found = by_key(issues(tmp_path, """\
        hive_user_groups:
          ops: {gid: 2000}
          Bad Group: {}
          dev: {gid: -1}
        hive_users:
          alice: {uid: 2001, group: ops, id_rsa_pub: "ssh-ed25519 AAAAC3Nz alice@example"}
          bob smith: {}
          carol: {uid: x, groups: ops, gruop: ops, id_rsa_pub: "not a key"}
          dave: x
          eve: {authorized_keys: ["ssh-ed25519 AAA\\nssh-rsa BBB"], exclusive: "no"}
        """))
    assert set(found) == {
        "hive_user_groups.Bad Group", "hive_user_groups.dev.gid", "hive_users.bob smith", "hive_users.carol.uid",
        "hive_users.carol.groups", "hive_users.carol.id_rsa_pub", "hive_users.dave",
        "hive_users.eve.authorized_keys[0]", "hive_users.eve.exclusive",
    }
    assert found["hive_users.bob smith"].line == 7
    assert "Linux user name" in found["hive_users.bob smith"].allowed
    # an unknown key is ignored by hive-builder's users role: a warning naming the close one
    site = load_site(load_with(tmp_path / "typo", "hive_users:\n  carol: {uid: 2002, gruop: ops}\n"))
    (typo,) = site.warnings
    assert typo.key == "hive_users.carol.gruop" and "did you mean 'group'" in typo.problem
    assert found["hive_users.carol.groups"].problem == "is not a list"
    assert found["hive_users.eve.authorized_keys[0]"].problem == "is not a single public key line"
    assert found["hive_users.eve.exclusive"].problem == "is not a boolean"


def test_host_vars_users_are_checked_too(tmp_path: Path) -> None:
    path = load_with(tmp_path, "{}\n")
    (path.parent / "host_vars").mkdir()
    (path.parent / "host_vars" / "p-hive0.t.yml").write_text("hive_users:\n  Root!: {uid: 1}\n")
    with pytest.raises(SiteError) as info:
        load_site(path)
    (issue,) = info.value.issues
    assert issue.file.name == "p-hive0.t.yml" and issue.key == "hive_users.Root!"


ACCEPTED = """\
hive_user_groups:
  ops: {gid: 2000}
  audit:
hive_users:
  alice: {uid: 2001, group: ops, id_rsa_pub: "ssh-ed25519 AAAAC3Nz alice@example"}
  bob: {groups: [ops, audit], authorized_keys: ['from="10.0.0.1" ssh-rsa AAAAB3 bob', "ecdsa-sha2-nistp256 AAAAE2"],
        exclusive: true}
  carol:
  svc$: {uid: 3000}
"""


def test_every_accepted_entry_builds_the_users_step_without_error(tmp_path: Path) -> None:
    """What the site check lets through, the users step turns into primitives (no ValueError mid-phase)."""
    site = load_site(load_with(tmp_path, ACCEPTED))
    data = site.group_vars["all"]
    items = user_primitives(data["hive_user_groups"], data["hive_users"], login_user="", login_keys=[])
    assert {i.ident for i in items} >= {"group[ops]", "group[audit]", "user[alice]", "user[bob]", "user[carol]",
                                        "user[svc$]", "authorized_keys[alice]", "authorized_keys[bob]"}


def test_bad_users_stop_setup_hosts_before_any_host(tmp_path: Path) -> None:
    """Exit 2 from the site check: on the old code the run went ahead and the users step raised mid-phase."""
    root = load_with(tmp_path, "hive_users:\n  Alice Smith: {uid: 2001}\n").parent.parent
    done = subprocess.run([sys.executable, "-m", "hive_nornir", "-r", str(root), "run", "setup-hosts"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "all.yml:2: hive_users.Alice Smith: 'Alice Smith' has an invalid format" in done.stderr
    assert not (root / ".hive" / "private" / "journal").exists()
