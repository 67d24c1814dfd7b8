"""pip-venv: the admin user's ~/docker virtualenv, where docker tooling (python-dxf, the docker SDK) lives."""

from __future__ import annotations

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Primitive, q
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.lines import LineInFile
from hive_nornir.primitives.packages import Packages

DEFAULT_PIP_PACKAGES = ("python-dxf",)  # hive-builder's list; the docker SDK comes from the distribution


def python_packages(facts: Facts) -> list[str]:
    """The interpreter, venv support, pip and the distribution's docker SDK, per family."""
    if facts.is_redhat:
        return ["python3", "python3-libs", "python3-devel", "python3-pip", "python3-setuptools"]
    return ["python3", "python3-venv", "python3-pip", "python3-setuptools", "python3-docker"]


def venv_primitives(facts: Facts, user: str, home: str, pip_packages: list[str]) -> list[Primitive]:
    """Create the venv as the user (sees the distro's site packages), add pip packages, activate it at login."""
    venv = f"{home}/docker"
    as_user = f"runuser -u {q(user)} --"
    items: list[Primitive] = [
        Packages(names=python_packages(facts)),
        Command(cmd=f"{as_user} python3 -m venv --system-site-packages {q(venv)}", creates=f"{venv}/bin/python"),
    ]
    for name in pip_packages:
        items.append(Command(cmd=f"{as_user} {q(venv)}/bin/pip install -q {q(name)}",
                             unless=f"{q(venv)}/bin/pip show -q {q(name)}"))
    items.append(LineInFile(path=f"{home}/.bashrc", line=". ~/docker/bin/activate", owner=user, group=user))
    return items


def admin_home(ctx: TaskContext, user: str) -> str:
    """The admin's home from the passwd database (root's is /root, others vary); asked once per host and run."""
    memo = f"home:{ctx.name}:{user}"
    if memo in ctx.shared:
        return str(ctx.shared[memo])
    found = ctx.run(f"getent passwd {q(user)}", check=False)
    fields = found.stdout.strip().split(":")
    if not found.ok or len(fields) < 6:
        raise StepFailed(f"hive_admin {user!r} does not exist on this host (getent passwd found nothing)")
    ctx.shared[memo] = fields[5]
    return fields[5]


def pip_venv(ctx: TaskContext) -> None:
    """hive_venv_pip_packages overrides the pip list (the lab sets [] since its hosts have no PyPI)."""
    user = str(ctx.var("hive_admin") or "admin")
    wanted = ctx.var("hive_venv_pip_packages")
    packages = list(DEFAULT_PIP_PACKAGES if wanted is None else wanted)
    ctx.ensure(venv_primitives(ctx.facts, user, admin_home(ctx, user), packages))
