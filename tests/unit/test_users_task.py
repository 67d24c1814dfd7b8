"""users task planned offline: keys are added to the login user's file, and `exclusive` never locks it out."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from fake_host import plan_task

from hive_nornir.engine.errors import StepFailed
from hive_nornir.facts import canned
from hive_nornir.primitives.users import AuthorizedKeys
from hive_nornir.tasks.host.users import user_primitives, users

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop"
STAGE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIS hive-stage"


def keys_of(items: Sequence[object], user: str) -> AuthorizedKeys:
    [found] = [i for i in items if isinstance(i, AuthorizedKeys) and i.user == user]
    return found


def test_hive_users_naming_the_admin_keeps_its_keys_by_default() -> None:
    items = user_primitives({"ops": {"gid": 2000}}, {"admin": {"group": "ops", "id_rsa_pub": KEY_A}}, "admin", None)
    keys = keys_of(items, "admin")
    assert (keys.exclusive, keys.keep, keys.keys) == (False, (), (KEY_A,))


def test_exclusive_for_the_login_user_keeps_the_login_key_or_refuses() -> None:
    spec = {"admin": {"id_rsa_pub": KEY_A, "exclusive": True}}
    assert keys_of(user_primitives({}, spec, "admin", [STAGE]), "admin").keep == (STAGE,)
    with pytest.raises(StepFailed, match="login key is unknown"):
        user_primitives({}, spec, "admin", None)
    other = keys_of(user_primitives({}, {"alice": {"id_rsa_pub": KEY_A, "exclusive": True}}, "admin", None), "alice")
    assert other.exclusive and other.keep == ()  # not the login user: plain exclusive


def test_users_task_writes_a_vetted_sudoers_file_per_group() -> None:
    result = plan_task(users, canned("debian"), host_vars={
        "hive_user_groups": {"ops": {"gid": 2000}},
        "hive_users": {"alice": {"uid": 2001, "group": "ops", "id_rsa_pub": KEY_A}}})
    assert result.files == {"/etc/sudoers.d/ops": "%ops ALL=(ALL) NOPASSWD: ALL\n"}
    [(_, plan)] = [p for p in result.plans if p[0] == "file[/etc/sudoers.d/ops]"]
    assert plan.uploads[0].validate == "visudo -cf %s" and plan.uploads[0].mode == "0440"
