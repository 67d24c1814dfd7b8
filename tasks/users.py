"""users: groups with NOPASSWD sudo, and users with their authorized keys (hive_user_groups, hive_users)."""

from __future__ import annotations

from typing import Any

from hive_nornir.engine.context import HostContext
from hive_nornir.engine.errors import StepFailed
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.file import File
from hive_nornir.primitives.users import Group, user_with_keys


def sudoers_file(group: str) -> File:
    """`%group ALL=(ALL) NOPASSWD: ALL`, vetted by visudo before it can break sudo."""
    return File(path=f"/etc/sudoers.d/{group}", content=f"%{group} ALL=(ALL) NOPASSWD: ALL\n", mode="0440",
                validate="visudo -cf %s")


def user_primitives(groups: dict[str, Any], users: dict[str, Any]) -> list[Primitive]:
    """Groups (and their sudoers files) before users, so a user's group always exists when it is created."""
    items: list[Primitive] = []
    for name, spec in (groups or {}).items():
        items.append(Group(name=name, gid=(spec or {}).get("gid")))
        items.append(sudoers_file(name))
    for name, spec in (users or {}).items():
        spec = spec or {}
        keys = spec.get("authorized_keys") or ([spec["id_rsa_pub"]] if spec.get("id_rsa_pub") else [])
        items.extend(user_with_keys(name=name, uid=spec.get("uid"), group=spec.get("group"),
                                    groups=tuple(spec.get("groups", ())), authorized_keys=tuple(keys)))
    return items


def users(ctx: HostContext) -> None:
    """Runs where hive_users is set (the step's condition), like hive-builder's users role."""
    groups, wanted = ctx.var("hive_user_groups") or {}, ctx.var("hive_users") or {}
    if not isinstance(groups, dict) or not isinstance(wanted, dict):
        raise StepFailed("hive_user_groups and hive_users must be mappings of name -> settings")
    ctx.ensure(user_primitives(groups, wanted))
