"""users: groups with NOPASSWD sudo, and users with their authorized keys (hive_user_groups, hive_users)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.file import File
from hive_nornir.primitives.users import Group, user_with_keys


def sudoers_file(group: str) -> File:
    """`%group ALL=(ALL) NOPASSWD: ALL`, vetted by visudo before it can break sudo."""
    return File(path=f"/etc/sudoers.d/{group}", content=f"%{group} ALL=(ALL) NOPASSWD: ALL\n", mode="0440",
                validate="visudo -cf %s")


def user_primitives(groups: dict[str, Any], users: dict[str, Any], login_user: str = "",
                    login_keys: Sequence[str] | None = None) -> list[Primitive]:
    """Groups (and their sudoers files) before users, so a user's group always exists when it is created.

    Keys are added, never replaced (hive-builder's authorized_key), unless a user sets `exclusive: true`; for
    the user hive_nornir logs in as, that is refused when the login key is unknown (None) and, on the host,
    when the file would lose the login key.
    """
    items: list[Primitive] = []
    for name, spec in (groups or {}).items():
        items.append(Group(name=name, gid=(spec or {}).get("gid")))
        items.append(sudoers_file(name))
    for name, spec in (users or {}).items():
        spec = spec or {}
        keys = spec.get("authorized_keys") or ([spec["id_rsa_pub"]] if spec.get("id_rsa_pub") else [])
        exclusive = bool(spec.get("exclusive", False))
        keep: Sequence[str] = ()
        if exclusive and name == login_user:
            if login_keys is None:
                raise StepFailed(f"hive_users.{name}.exclusive: {name} is the user hive_nornir logs in as and its "
                                 "login key is unknown here, so replacing authorized_keys could lock it out")
            keep = login_keys
        items.extend(user_with_keys(name=name, uid=spec.get("uid"), group=spec.get("group"),
                                    groups=tuple(spec.get("groups", ())), authorized_keys=tuple(keys),
                                    exclusive_keys=exclusive, keep_keys=tuple(keep)))
    return items


def login_keys(ctx: TaskContext) -> list[str] | None:
    """Public keys of the session's key files (`<key>.pub`, else derived); None when it logs in another way."""
    params = getattr(getattr(ctx, "session", None), "params", None)
    files = tuple(getattr(params, "key_files", ()) or ())
    if not files:
        return None
    found = []
    for name in files:
        pub = Path(f"{name}.pub")
        if pub.is_file():
            found.append(pub.read_text().strip())
            continue
        try:
            import paramiko

            key = paramiko.PKey.from_path(name)
        except Exception:  # noqa: BLE001 - an unreadable key cannot be shown to stay
            return None
        found.append(f"{key.get_name()} {key.get_base64()}")
    return found


def users(ctx: TaskContext) -> None:
    """Runs where hive_users is set (the step's condition), like hive-builder's users role."""
    groups, wanted = ctx.var("hive_user_groups") or {}, ctx.var("hive_users") or {}
    if not isinstance(groups, dict) or not isinstance(wanted, dict):
        raise StepFailed("hive_user_groups and hive_users must be mappings of name -> settings")
    exclusive_login = any(isinstance(s, dict) and s.get("exclusive") for n, s in wanted.items()
                          if n == _login_user(ctx))
    ctx.ensure(user_primitives(groups, wanted, _login_user(ctx), login_keys(ctx) if exclusive_login else []))


def _login_user(ctx: TaskContext) -> str:
    """The user hive_nornir's session logs in as ('' when there is no session, e.g. offline planning)."""
    return str(getattr(getattr(ctx, "session", None), "user", "") or "")
