"""Service: systemctl show parsed into enable/start actions for both families; the probe runs on this host."""

from __future__ import annotations

import pytest
from probe_runner import run_probe

from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.service import (
    Service,
    reload_command,
    reload_handler,
    restart_command,
    restart_handler,
)

FAMILIES = [canned("debian"), canned("redhat")]



def show(load: str = "loaded", file_state: str = "enabled", active: str = "active") -> str:
    return f"LoadState={load}\nActiveState={active}\nUnitFileState={file_state}\n"


@pytest.mark.parametrize("facts", FAMILIES)
def test_probe_is_one_systemctl_show(facts: Facts) -> None:
    probe = Service("nginx", enabled=True, state="started").probe(facts)
    assert probe == "systemctl show -p LoadState -p UnitFileState -p ActiveState -- nginx.service"
    assert "docker.socket" in Service("docker.socket", state="started").probe(facts)


@pytest.mark.parametrize("facts", FAMILIES)
def test_enable_and_start_when_disabled_and_inactive(facts: Facts) -> None:
    svc = Service("nginx", enabled=True, state="started")
    plan = svc.plan(facts, show(file_state="disabled", active="inactive"))
    assert plan.changed
    assert plan.commands == ["systemctl enable nginx.service", "systemctl start nginx.service"]
    assert plan.summary == "enable, start nginx.service"
    assert "enabled: disabled -> enabled" in plan.diff and "active: inactive -> active" in plan.diff


@pytest.mark.parametrize("facts", FAMILIES)
@pytest.mark.parametrize("file_state", ["enabled", "static", "alias", "indirect"])
def test_no_change_when_enabled_or_static_and_running(facts: Facts, file_state: str) -> None:
    assert not Service("sshd", enabled=True, state="started").plan(facts, show(file_state=file_state)).changed


@pytest.mark.parametrize("facts", FAMILIES)
def test_missing_unit_is_reported_as_missing(facts: Facts) -> None:
    out = show(load="not-found", file_state="", active="inactive")
    plan = Service("sysstat", enabled=True).plan(facts, out)
    assert plan.missing == "unit sysstat.service not found"
    assert not plan.commands


def test_only_start_when_enabled_is_none() -> None:
    plan = Service("nginx", state="started").plan(canned(), show(file_state="disabled", active="failed"))
    assert plan.commands == ["systemctl start nginx.service"]


def test_disable_and_stop() -> None:
    plan = Service("cups", enabled=False, state="stopped").plan(canned("redhat"), show())
    assert plan.commands == ["systemctl disable cups.service", "systemctl stop cups.service"]
    assert not Service("cups", enabled=False, state="stopped").plan(
        canned("redhat"), show(file_state="disabled", active="inactive")).changed
    # a static unit cannot be disabled: asking for it is not a change
    assert not Service("x", enabled=False).plan(canned(), show(file_state="static")).changed


def test_masked_unit_is_unmasked_before_enable() -> None:
    plan = Service("nginx", enabled=True, state="started").plan(
        canned(), show(load="masked", file_state="masked", active="inactive"))
    assert plan.commands == ["systemctl unmask nginx.service", "systemctl enable nginx.service",
                             "systemctl start nginx.service"]


def test_no_systemd_is_missing() -> None:
    assert "systemd" in Service("nginx", state="started").plan(canned(), "").missing


def test_handlers_and_notify() -> None:
    assert reload_command("ssh") == "systemctl reload ssh.service"
    assert restart_command("docker.socket") == "systemctl restart docker.socket"
    assert reload_handler("ssh") == "reload:ssh" and restart_handler("nginx") == "restart:nginx"
    svc = Service("nginx", state="started").with_notify(restart_handler("nginx"))
    assert svc.notify == ("restart:nginx",)


@pytest.mark.parametrize("kwargs", [{"name": "x", "state": "running"}, {"name": "-x"}, {"name": ""}])
def test_bad_input(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Service(**kwargs)


def test_real_probe_runs_here() -> None:
    """This machine may or may not run systemd; either way the probe is valid sh and plans cleanly."""
    svc = Service("hive-no-such-unit", enabled=True, state="started")
    plan = svc.plan(canned(), run_probe(svc, canned()))
    assert not plan.commands
    assert plan.missing in ("unit hive-no-such-unit.service not found",
                            "cannot query hive-no-such-unit.service: systemd is not running on this host")
