"""Groups, users and authorized keys planned from canned getent/id output; getent probes run on this host."""

from __future__ import annotations

import base64
import subprocess
from dataclasses import replace

import pytest
from plan_cases import DEB, RH, Case, check_case, ids, on
from probe_runner import run_probe

from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.base import Upload
from hive_nornir.primitives.users import AuthorizedKeys, Group, User, user_with_keys

FAMILIES = [DEB, RH]
KEYS = "/home/deploy/.ssh/authorized_keys"
KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB bob@desk"



def user_out(passwd: str = "", ids: str = "", groups: tuple[str, ...] = ()) -> str:
    return f"passwd={passwd}\nids={ids}\n--groups--\n" + "".join(g + "\n" for g in groups)


def keys_out(content: str | None, sshdir: str | None = "700 deploy ops",
             keys_stat: str = "600 deploy ops") -> str:
    lines = ["home=/home/deploy", "group=ops", "homedir=yes"]
    if sshdir:
        lines.append(f"sshdir={sshdir}")
    if content is not None:
        lines += [f"keys={keys_stat}", "content=" + base64.b64encode(content.encode()).decode()]
    return "\n".join(lines)


def keys_file(content: str, path: str = KEYS) -> Upload:
    """authorized_keys as AuthorizedKeys installs it: the user's, 0600, no backup (the diff shows the old)."""
    return Upload(path, content.encode(), mode="0600", owner="deploy", group="ops", backup=False)


DEPLOY_SH = user_out("deploy:x:1001:1000:Deploy:/home/deploy:/bin/sh", "deploy adm", ("ops:x:1500:", "docker:x:999:"))
DEPLOY_IN_DOCKER = user_out("deploy:x:1001:1001::/home/deploy:/bin/bash", "deploy adm docker", ("docker:x:999:deploy",))
LOGIN = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"  # KEY_B without its comment, as the session knows it

GROUP_CASES = [
    *on(FAMILIES, Case("create-with-gid", Group("ops", gid=1500), "group=", commands=["groupadd -g 1500 ops"],
                       summary="create group ops (gid 1500)", diff="+ group ops (gid 1500)\n")),
    *on(FAMILIES, Case("create-system", Group("svc", system=True), "group=", commands=["groupadd -r svc"])),
    *on(FAMILIES, Case("no-change-with-gid", Group("ops", gid=1500), "group=ops:x:1500:alice")),
    *on(FAMILIES, Case("no-change-any-gid", Group("ops"), "group=ops:x:1234:")),
    *on(FAMILIES, Case("gid-fixed", Group("ops", gid=1500), "group=ops:x:1234:", commands=["groupmod -g 1500 ops"],
                       summary="group ops: gid 1234 -> 1500", diff="- gid 1234\n+ gid 1500\n")),
    *on(FAMILIES, Case("absent-removes", Group("ops", state="absent"), "group=ops:x:1234:",
                       commands=["groupdel ops"], summary="remove group ops")),
    *on(FAMILIES, Case("absent-and-gone", Group("ops", state="absent"), "group=")),
]

USER_CASES = [
    *on(FAMILIES, Case("create-with-all-options",
                       User("deploy", uid=1001, group="ops", groups=("docker", "adm"), home="/srv/deploy"),
                       user_out(groups=("ops:x:1500:", "docker:x:999:", "adm:x:4:")),
                       commands=["useradd -m -u 1001 -g ops -G docker,adm -s /bin/bash -d /srv/deploy deploy"],
                       summary="create user deploy")),
    Case("own-group-created-by-useradd", User("deploy", group="deploy"), user_out(),
         commands=["useradd -m -U -s /bin/bash deploy"]),
    *on(FAMILIES, Case("a-missing-group-is-missing", User("deploy", groups=("docker", "ops")),
                       user_out(groups=("ops:x:1500:",)), missing="group docker does not exist (user deploy)")),
    *on(FAMILIES, Case("no-change", User("deploy", uid=1001, group="ops", groups=("docker",)),
                       user_out("deploy:x:1001:1500:Deploy:/home/deploy:/bin/bash", "ops docker adm",
                                ("ops:x:1500:", "docker:x:999:deploy")))),
    Case("update-is-one-usermod-with-only-differences", User("deploy", uid=1001, group="ops", groups=("docker",)),
         DEPLOY_SH, commands=["usermod -g ops -a -G docker -s /bin/bash deploy"],
         summary="user deploy: group deploy -> ops, groups +docker, shell /bin/sh -> /bin/bash",
         diff="~ group deploy -> ops\n~ groups +docker\n~ shell /bin/sh -> /bin/bash\n"),
    Case("exclusive-groups-drops-unlisted", User("deploy", groups=("docker",), exclusive_groups=True),
         DEPLOY_IN_DOCKER, facts=RH, commands=["usermod -G docker deploy"]),
    Case("additive-groups-keep-unlisted", User("deploy", groups=("docker",)), DEPLOY_IN_DOCKER, facts=RH),
    Case("absent-removes", User("old", state="absent"), user_out("old:x:1002:1002::/home/old:/bin/bash"),
         commands=["userdel old"]),
    Case("absent-removes-home", User("old", state="absent", remove_home=True),
         user_out("old:x:1002:1002::/home/old:/bin/bash"), commands=["userdel -r old"]),
    Case("absent-and-gone", User("old", state="absent"), "passwd="),
]

KEY_CASES = [
    *on(FAMILIES, Case("no-change", AuthorizedKeys("deploy", [KEY_A, KEY_B]), keys_out(f"{KEY_A}\n{KEY_B}\n"))),
    *on(FAMILIES, Case("exclusive-replaces-the-file", AuthorizedKeys("deploy", [KEY_A], exclusive=True),
                       keys_out(f"{KEY_B}\n"), uploads=[keys_file(f"{KEY_A}\n")],
                       summary=f"authorized_keys of deploy: update {KEYS}",
                       diff=f"--- {KEYS} (current)\n+++ {KEYS} (desired)\n@@ -1 +1 @@\n-{KEY_B}\n+{KEY_A}\n")),
    Case("not-exclusive-adds-to-existing", AuthorizedKeys("deploy", [KEY_A], exclusive=False), keys_out(f"{KEY_B}\n"),
         uploads=[keys_file(f"{KEY_B}\n{KEY_A}\n")],
         diff=f"--- {KEYS} (current)\n+++ {KEYS} (desired)\n@@ -1 +1,2 @@\n {KEY_B}\n+{KEY_A}\n"),
    Case("not-exclusive-by-default-like-hive-builders-authorized-key", AuthorizedKeys("deploy", [KEY_A]),
         keys_out(f"{KEY_B}\n"), uploads=[keys_file(f"{KEY_B}\n{KEY_A}\n")],
         notes="the stage key already in the login user's file stays when hive_users names that user"),
    Case("exclusive-refuses-to-drop-the-login-key", AuthorizedKeys("deploy", [KEY_A], exclusive=True, keep=[LOGIN]),
         keys_out(f'from="10.0.0.0/8" {KEY_B}\n'),
         error='refusing: exclusive authorized_keys for deploy would drop the key hive_nornir logs in with '
               '(from="10.0.0.0/8" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB bob...); list it in the user\'s keys '
               "or drop `exclusive`"),
    Case("exclusive-keeps-a-listed-login-key-with-any-comment",
         AuthorizedKeys("deploy", [KEY_A, f"{LOGIN} other"], exclusive=True, keep=[LOGIN]), keys_out(f"{KEY_B}\n"),
         uploads=[keys_file(f"{KEY_A}\n{LOGIN} other\n")]),
    Case("exclusive-with-no-login-key-there-to-drop", AuthorizedKeys("deploy", [KEY_A], exclusive=True, keep=[LOGIN]),
         keys_out(""), uploads=[keys_file(f"{KEY_A}\n")]),
    Case("no-ssh-dir-stages-in-home-then-moves", AuthorizedKeys("deploy", [KEY_A]), keys_out(None, sshdir=None),
         uploads=[keys_file(f"{KEY_A}\n", "/home/deploy/.hive-authorized_keys")],
         commands=["install -d -m 700 -o deploy -g ops /home/deploy/.ssh",
                   f"mv -f /home/deploy/.hive-authorized_keys {KEYS}"],
         summary=f"authorized_keys of deploy: create {KEYS}, create /home/deploy/.ssh"),
    Case("fixes-modes-without-upload", AuthorizedKeys("deploy", [KEY_A]),
         keys_out(f"{KEY_A}\n", "755 deploy ops", "644 root root"),
         commands=["chmod 700 /home/deploy/.ssh", f"chmod 600 {KEYS}", f"chown deploy:ops {KEYS}"],
         diff=f"/home/deploy/.ssh mode 755 -> 700\n{KEYS} mode 644 -> 600\n{KEYS} owner root:root -> deploy:ops\n"),
    Case("a-missing-user-is-missing", AuthorizedKeys("deploy", [KEY_A]), "user=no",
         missing="user deploy does not exist"),
    Case("a-missing-home-is-missing", AuthorizedKeys("deploy", [KEY_A]), "home=/home/deploy\ngroup=x",
         missing="home directory /home/deploy of user deploy does not exist"),
]

CASES = [*(replace(c, id=f"group-{c.id}") for c in GROUP_CASES), *(replace(c, id=f"user-{c.id}") for c in USER_CASES),
         *(replace(c, id=f"keys-{c.id}") for c in KEY_CASES)]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_plan(case: Case) -> None:
    check_case(case)


# -- what the probes ask, bad input, helpers -----------------------------------------------------------------
@pytest.mark.parametrize("facts", FAMILIES)
def test_group_probe_asks_getent(facts: Facts) -> None:
    assert "getent group ops" in Group("ops", gid=1500).probe(facts)


@pytest.mark.parametrize("facts", FAMILIES)
def test_user_probe_asks_passwd_ids_and_wanted_groups_once(facts: Facts) -> None:
    probe = User("deploy", group="ops", groups=("docker", "ops")).probe(facts)
    assert "getent passwd deploy" in probe and "id -Gn deploy" in probe
    assert probe.count("getent group") == 1 and "getent group ops docker" in probe


@pytest.mark.parametrize("name", ["-rf", "a b", "x;reboot", ""])
def test_bad_names_fail_early(name: str) -> None:
    with pytest.raises(ValueError):
        User(name)
    with pytest.raises(ValueError):
        Group(name)


def test_added_keys_are_in_place_on_the_next_run() -> None:
    plan = AuthorizedKeys("deploy", [KEY_A]).plan(canned(), keys_out(f"{KEY_B}\n"))
    assert not AuthorizedKeys("deploy", [KEY_A]).plan(canned(), keys_out(plan.uploads[0].content.decode())).changed
    [_, keys] = user_with_keys("deploy", authorized_keys=[KEY_A])
    assert isinstance(keys, AuthorizedKeys) and not keys.exclusive


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
