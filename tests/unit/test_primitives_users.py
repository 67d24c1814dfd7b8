"""Groups, users and authorized keys planned from canned getent/id output; getent probes run on this host."""

from __future__ import annotations

import base64
import subprocess

import pytest
from probe_runner import run_probe

from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.users import AuthorizedKeys, Group, User, user_with_keys

FAMILIES = [canned("debian"), canned("redhat")]
KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB bob@desk"



def user_out(passwd: str = "", ids: str = "", groups: tuple[str, ...] = ()) -> str:
    return f"passwd={passwd}\nids={ids}\n--groups--\n" + "".join(g + "\n" for g in groups)


# -- groups ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("facts", FAMILIES)
def test_group_probe_and_create(facts: Facts) -> None:
    group = Group("ops", gid=1500)
    assert "getent group ops" in group.probe(facts)
    plan = group.plan(facts, "group=")
    assert plan.commands == ["groupadd -g 1500 ops"]
    assert plan.summary == "create group ops (gid 1500)"
    assert Group("svc", system=True).plan(facts, "group=").commands == ["groupadd -r svc"]


@pytest.mark.parametrize("facts", FAMILIES)
def test_group_no_change_and_gid_fix(facts: Facts) -> None:
    assert not Group("ops", gid=1500).plan(facts, "group=ops:x:1500:alice").changed
    assert not Group("ops").plan(facts, "group=ops:x:1234:").changed
    plan = Group("ops", gid=1500).plan(facts, "group=ops:x:1234:")
    assert plan.commands == ["groupmod -g 1500 ops"]
    assert Group("ops", state="absent").plan(facts, "group=ops:x:1234:").commands == ["groupdel ops"]
    assert not Group("ops", state="absent").plan(facts, "group=").changed


# -- users -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("facts", FAMILIES)
def test_user_probe_asks_passwd_ids_and_wanted_groups_once(facts: Facts) -> None:
    probe = User("deploy", group="ops", groups=("docker", "ops")).probe(facts)
    assert "getent passwd deploy" in probe and "id -Gn deploy" in probe
    assert probe.count("getent group") == 1 and "getent group ops docker" in probe


@pytest.mark.parametrize("facts", FAMILIES)
def test_user_create_with_all_options(facts: Facts) -> None:
    user = User("deploy", uid=1001, group="ops", groups=("docker", "adm"), home="/srv/deploy")
    out = user_out(groups=("ops:x:1500:", "docker:x:999:", "adm:x:4:"))
    plan = user.plan(facts, out)
    assert plan.commands == ["useradd -m -u 1001 -g ops -G docker,adm -s /bin/bash -d /srv/deploy deploy"]
    assert plan.summary == "create user deploy"


def test_user_own_group_created_by_useradd() -> None:
    plan = User("deploy", group="deploy").plan(canned(), user_out())
    assert plan.commands == ["useradd -m -U -s /bin/bash deploy"]


@pytest.mark.parametrize("facts", FAMILIES)
def test_user_with_missing_group_is_missing(facts: Facts) -> None:
    plan = User("deploy", groups=("docker", "ops")).plan(facts, user_out(groups=("ops:x:1500:",)))
    assert plan.missing == "group docker does not exist (user deploy)"
    assert not plan.commands


@pytest.mark.parametrize("facts", FAMILIES)
def test_user_no_change(facts: Facts) -> None:
    out = user_out("deploy:x:1001:1500:Deploy:/home/deploy:/bin/bash", "ops docker adm",
                   ("ops:x:1500:", "docker:x:999:deploy"))
    assert not User("deploy", uid=1001, group="ops", groups=("docker",)).plan(facts, out).changed


def test_user_update_is_one_usermod_with_only_differences() -> None:
    out = user_out("deploy:x:1001:1000:Deploy:/home/deploy:/bin/sh", "deploy adm",
                   ("ops:x:1500:", "docker:x:999:"))
    plan = User("deploy", uid=1001, group="ops", groups=("docker",)).plan(canned(), out)
    assert plan.commands == ["usermod -g ops -a -G docker -s /bin/bash deploy"]
    assert "shell /bin/sh -> /bin/bash" in plan.summary and "groups +docker" in plan.summary


def test_user_exclusive_groups_drops_unlisted() -> None:
    out = user_out("deploy:x:1001:1001::/home/deploy:/bin/bash", "deploy adm docker",
                   ("docker:x:999:deploy",))
    plan = User("deploy", groups=("docker",), exclusive_groups=True).plan(canned("redhat"), out)
    assert plan.commands == ["usermod -G docker deploy"]
    additive = User("deploy", groups=("docker",)).plan(canned("redhat"), out)
    assert not additive.changed


def test_user_absent() -> None:
    out = user_out("old:x:1002:1002::/home/old:/bin/bash")
    assert User("old", state="absent").plan(canned(), out).commands == ["userdel old"]
    assert User("old", state="absent", remove_home=True).plan(canned(), out).commands == ["userdel -r old"]
    assert not User("old", state="absent").plan(canned(), "passwd=").changed


@pytest.mark.parametrize("name", ["-rf", "a b", "x;reboot", ""])
def test_bad_names_fail_early(name: str) -> None:
    with pytest.raises(ValueError):
        User(name)
    with pytest.raises(ValueError):
        Group(name)


# -- authorized keys ---------------------------------------------------------------------------------------
def keys_out(content: str | None, sshdir: str | None = "700 deploy ops",
             keys_stat: str = "600 deploy ops") -> str:
    lines = ["home=/home/deploy", "group=ops", "homedir=yes"]
    if sshdir:
        lines.append(f"sshdir={sshdir}")
    if content is not None:
        lines += [f"keys={keys_stat}", "content=" + base64.b64encode(content.encode()).decode()]
    return "\n".join(lines)


@pytest.mark.parametrize("facts", FAMILIES)
def test_keys_no_change(facts: Facts) -> None:
    assert not AuthorizedKeys("deploy", [KEY_A, KEY_B]).plan(facts, keys_out(f"{KEY_A}\n{KEY_B}\n")).changed


@pytest.mark.parametrize("facts", FAMILIES)
def test_keys_exclusive_upload_replaces_file(facts: Facts) -> None:
    plan = AuthorizedKeys("deploy", [KEY_A], exclusive=True).plan(facts, keys_out(f"{KEY_B}\n"))
    assert not plan.commands
    [upload] = plan.uploads
    assert upload.path == "/home/deploy/.ssh/authorized_keys"
    assert upload.content == f"{KEY_A}\n".encode()
    assert (upload.mode, upload.owner, upload.group) == ("0600", "deploy", "ops")
    assert f"-{KEY_B}" in plan.diff and f"+{KEY_A}" in plan.diff
    assert "--- /home/deploy/.ssh/authorized_keys (current)" in plan.diff


def test_keys_not_exclusive_adds_to_existing() -> None:
    plan = AuthorizedKeys("deploy", [KEY_A], exclusive=False).plan(canned(), keys_out(f"{KEY_B}\n"))
    assert plan.uploads[0].content == f"{KEY_B}\n{KEY_A}\n".encode()


def test_keys_are_not_exclusive_by_default_like_hive_builders_authorized_key() -> None:
    """The stage key already in the login user's file stays when hive_users names that user."""
    plan = AuthorizedKeys("deploy", [KEY_A]).plan(canned(), keys_out(f"{KEY_B}\n"))
    [upload] = plan.uploads
    assert upload.content == f"{KEY_B}\n{KEY_A}\n".encode()
    assert not AuthorizedKeys("deploy", [KEY_A]).plan(canned(), keys_out(upload.content.decode())).changed
    [_, keys] = user_with_keys("deploy", authorized_keys=[KEY_A])
    assert isinstance(keys, AuthorizedKeys) and not keys.exclusive


def test_exclusive_keys_refuse_to_drop_the_login_key() -> None:
    login = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"  # KEY_B without its comment, as the session knows it
    plan = AuthorizedKeys("deploy", [KEY_A], exclusive=True, keep=[login]).plan(
        canned(), keys_out(f'from="10.0.0.0/8" {KEY_B}\n'))
    assert plan.error.startswith("refusing: exclusive authorized_keys for deploy would drop the key hive_nornir")
    assert not plan.uploads and not plan.commands
    # listed among the wanted keys (any comment): the file is replaced, the login key stays
    plan = AuthorizedKeys("deploy", [KEY_A, f"{login} other"], exclusive=True, keep=[login]).plan(
        canned(), keys_out(f"{KEY_B}\n"))
    assert plan.uploads[0].content == f"{KEY_A}\n{login} other\n".encode()
    # a key that is not there to drop is no reason to refuse
    plan = AuthorizedKeys("deploy", [KEY_A], exclusive=True, keep=[login]).plan(canned(), keys_out(""))
    assert plan.uploads[0].content == f"{KEY_A}\n".encode()


def test_keys_without_ssh_dir_stage_in_home_then_move() -> None:
    plan = AuthorizedKeys("deploy", [KEY_A]).plan(canned(), keys_out(None, sshdir=None))
    [upload] = plan.uploads
    assert upload.path == "/home/deploy/.hive-authorized_keys" and upload.content == f"{KEY_A}\n".encode()
    assert plan.commands == ["install -d -m 700 -o deploy -g ops /home/deploy/.ssh",
                             "mv -f /home/deploy/.hive-authorized_keys /home/deploy/.ssh/authorized_keys"]


def test_keys_fixes_modes_without_upload() -> None:
    out = keys_out(f"{KEY_A}\n", "755 deploy ops", "644 root root")
    plan = AuthorizedKeys("deploy", [KEY_A]).plan(canned(), out)
    assert not plan.uploads
    assert plan.commands == ["chmod 700 /home/deploy/.ssh", "chmod 600 /home/deploy/.ssh/authorized_keys",
                             "chown deploy:ops /home/deploy/.ssh/authorized_keys"]


def test_keys_missing_user_or_home() -> None:
    assert AuthorizedKeys("deploy", [KEY_A]).plan(canned(), "user=no").missing == "user deploy does not exist"
    no_home = AuthorizedKeys("deploy", [KEY_A]).plan(canned(), "home=/home/deploy\ngroup=x")
    assert no_home.missing == "home directory /home/deploy of user deploy does not exist"


def test_key_with_newline_rejected() -> None:
    with pytest.raises(ValueError):
        AuthorizedKeys("deploy", [f"{KEY_A}\n{KEY_B}"])


def test_user_with_keys_orders_user_first() -> None:
    items = user_with_keys("deploy", authorized_keys=[KEY_A], uid=1001, groups=("ops",))
    assert [type(i) for i in items] == [User, AuthorizedKeys]
    assert isinstance(items[0], User) and items[0].uid == 1001
    assert [type(i) for i in user_with_keys("deploy")] == [User]  # no keys given: the file is left alone


# -- real probes on this machine (read-only) ---------------------------------------------------------------
@pytest.mark.parametrize("facts", FAMILIES)
def test_real_probes_for_root(facts: Facts) -> None:
    entry = subprocess.run(["getent", "passwd", "root"], capture_output=True, text=True).stdout
    shell = entry.strip().split(":")[6]
    user = User("root", uid=0, group="root", shell=shell, home="/root")
    assert not user.plan(facts, run_probe(user, facts)).changed
    changed = User("root", uid=0, shell="/bin/hive-test-shell")
    assert changed.plan(facts, run_probe(changed, facts)).commands == ["usermod -s /bin/hive-test-shell root"]
    group = Group("root", gid=0)
    assert not group.plan(facts, run_probe(group, facts)).changed
    nobody = Group("hive-no-such-group")
    assert nobody.plan(facts, run_probe(nobody, facts)).commands == ["groupadd hive-no-such-group"]


def test_real_authorized_keys_probe_for_root() -> None:
    keys = AuthorizedKeys("root", [KEY_A])
    out = run_probe(keys, canned())
    assert "home=/root" in out and "group=root" in out and "homedir=yes" in out
    plan = keys.plan(canned(), out)
    assert plan.changed and any(u.path.startswith("/root/") for u in plan.uploads)
    ghost = AuthorizedKeys("hive-no-such-user", [KEY_A])
    assert ghost.plan(canned(), run_probe(ghost, canned())).missing == "user hive-no-such-user does not exist"
