"""Service: systemctl show parsed into enable/start actions for both families; the probe runs on this host."""

from __future__ import annotations

import pytest
from plan_cases import DEB, RH, Case, check_case, ids, on
from probe_runner import run_probe

from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.service import (
    Service,
    reload_command,
    reload_handler,
    restart_command,
    restart_handler,
)

FAMILIES = [DEB, RH]



def show(load: str = "loaded", file_state: str = "enabled", active: str = "active") -> str:
    return f"LoadState={load}\nActiveState={active}\nUnitFileState={file_state}\n"


CASES = [
    *on(FAMILIES, Case("enable-and-start-when-disabled-and-inactive", Service("nginx", enabled=True, state="started"),
                       show(file_state="disabled", active="inactive"),
                       commands=["systemctl enable nginx.service", "systemctl start nginx.service"],
                       summary="enable, start nginx.service",
                       diff="enabled: disabled -> enabled\nactive: inactive -> active\n")),
    *(case for file_state in ("enabled", "static", "alias", "indirect")
      for case in on(FAMILIES, Case(f"no-change-when-{file_state}-and-running",
                                    Service("sshd", enabled=True, state="started"), show(file_state=file_state)))),
    *on(FAMILIES, Case("missing-unit-is-missing", Service("sysstat", enabled=True),
                       show(load="not-found", file_state="", active="inactive"),
                       missing="unit sysstat.service not found")),
    Case("only-start-when-enabled-is-none", Service("nginx", state="started"),
         show(file_state="disabled", active="failed"), commands=["systemctl start nginx.service"],
         summary="start nginx.service", diff="active: failed -> active\n"),
    Case("disable-and-stop", Service("cups", enabled=False, state="stopped"), show(), facts=RH,
         commands=["systemctl disable cups.service", "systemctl stop cups.service"]),
    Case("disabled-and-stopped-is-no-change", Service("cups", enabled=False, state="stopped"),
         show(file_state="disabled", active="inactive"), facts=RH),
    Case("a-static-unit-cannot-be-disabled-so-no-change", Service("x", enabled=False), show(file_state="static")),
    Case("masked-unit-is-unmasked-before-enable", Service("nginx", enabled=True, state="started"),
         show(load="masked", file_state="masked", active="inactive"),
         commands=["systemctl unmask nginx.service", "systemctl enable nginx.service", "systemctl start nginx.service"],
         summary="unmask, enable, start nginx.service"),
    Case("no-systemd-is-missing", Service("nginx", state="started"), "",
         missing="cannot query nginx.service: systemd is not running on this host"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_plan(case: Case) -> None:
    check_case(case)


@pytest.mark.parametrize("facts", FAMILIES)
def test_probe_is_one_systemctl_show(facts: Facts) -> None:
    probe = Service("nginx", enabled=True, state="started").probe(facts)
    assert probe == "systemctl show -p LoadState -p UnitFileState -p ActiveState -- nginx.service"
    assert "docker.socket" in Service("docker.socket", state="started").probe(facts)


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
