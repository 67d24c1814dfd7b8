"""pip-venv and the site addon hook, planned offline against canned facts."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_host import plan_task

from hive_nornir.engine.errors import StepFailed
from hive_nornir.facts import canned
from hive_nornir.tasks.host.addon import addon, addon2
from hive_nornir.tasks.host.pip_venv import pip_venv

PASSWD = "admin:x:1000:1000::/home/admin:/bin/bash\n"


def getent(cmd: str) -> str:
    return PASSWD if cmd == "getent passwd admin" else ""


def test_debian_venv_sees_the_distro_docker_sdk_and_installs_python_dxf() -> None:
    plan = plan_task(pip_venv, canned("debian"), run=getent)
    installs = [c for c in plan.commands if "apt-get install" in c]
    assert len(installs) == 1
    assert installs[0].endswith(" python3 python3-venv python3-pip python3-setuptools python3-docker")
    assert "runuser -u admin -- python3 -m venv --system-site-packages /home/admin/docker" in plan.commands
    assert "runuser -u admin -- /home/admin/docker/bin/pip install -q python-dxf" in plan.commands
    assert plan.files["/home/admin/.bashrc"] == ". ~/docker/bin/activate\n"


def test_el_venv_uses_dnf_python_packages_and_the_site_pip_list() -> None:
    plan = plan_task(pip_venv, canned("redhat"), run=getent, host_vars={"hive_venv_pip_packages": ["docker", "six"]})
    assert "dnf install -y python3 python3-libs python3-devel python3-pip python3-setuptools" in plan.commands
    assert [c for c in plan.commands if "pip install" in c] == [
        "runuser -u admin -- /home/admin/docker/bin/pip install -q docker",
        "runuser -u admin -- /home/admin/docker/bin/pip install -q six"]


def test_an_empty_pip_list_installs_nothing_from_pypi() -> None:
    plan = plan_task(pip_venv, canned("debian"), run=getent, host_vars={"hive_venv_pip_packages": []})
    assert not any("pip install" in c for c in plan.commands)


def test_missing_admin_user_is_a_clear_failure() -> None:
    with pytest.raises(StepFailed, match="hive_admin 'ops' does not exist"):
        plan_task(pip_venv, canned("debian"), run=lambda _c: "", host_vars={"hive_admin": "ops"})


def write_addon(root: Path, name: str, body: str) -> Path:
    (root / "addons").mkdir(parents=True, exist_ok=True)
    path = root / "addons" / f"{name}.py"
    path.write_text(body)
    return root / ".hive" / "private"


def test_site_addon_runs_with_the_host_context(tmp_path: Path) -> None:
    ctx_dir = write_addon(tmp_path, "addon", "from hive_nornir.primitives.file import File\n"
                          "def addon(ctx):\n    ctx.ensure([File(path='/etc/motd', content=ctx.name + '\\n')])\n")
    plan = plan_task(addon, canned("debian"), context_dir=ctx_dir)
    assert plan.files == {"/etc/motd": "p-hive0.pdns\n"}
    assert plan_task(addon2, canned("debian"), context_dir=ctx_dir).files == {}


def test_no_addon_file_means_nothing_to_do(tmp_path: Path) -> None:
    plan = plan_task(addon, canned("debian"), context_dir=tmp_path / ".hive" / "private")
    assert plan.plans == [] and plan.ran == []


def test_a_broken_addon_names_its_file(tmp_path: Path) -> None:
    ctx_dir = write_addon(tmp_path, "addon2", "def addon2(ctx):\n    return (\n")
    with pytest.raises(StepFailed, match=r"addons/addon2.py: SyntaxError"):
        plan_task(addon2, canned("debian"), context_dir=ctx_dir)
    ctx_dir = write_addon(tmp_path, "addon", "def setup(ctx):\n    pass\n")
    with pytest.raises(StepFailed, match=r"addons/addon.py: defines no function addon\(ctx\)"):
        plan_task(addon, canned("debian"), context_dir=ctx_dir)
