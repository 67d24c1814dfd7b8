"""Service: a systemd unit enabled and running (or not), read with one `systemctl show`."""

from __future__ import annotations

from dataclasses import dataclass

from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Plan, Primitive
from hive_nornir.primitives.probes import argv, parse_kv
from hive_nornir.primitives.resources import UNITS, path

STATES = ("started", "stopped")
ENABLED_OK = {"enabled", "static", "alias", "indirect", "generated", "transient"}  # `is-enabled` exit 0
NOT_ENABLED = {"enabled", "enabled-runtime", "linked", "linked-runtime"}  # what `disable` would change
RUNNING = {"active", "activating", "reloading"}
UNIT_DIRS = ("/etc/systemd", "/run/systemd", "/usr/lib/systemd", "/lib/systemd")  # where unit files come from


def unit_name(name: str) -> str:
    """`nginx` means `nginx.service`; `docker.socket` or `fstrim.timer` stay as they are."""
    return name if "." in name else f"{name}.service"


def reload_command(name: str) -> str:
    """What a reload handler runs for this unit."""
    return argv("systemctl", "reload", unit_name(name))


def restart_command(name: str) -> str:
    """What a restart handler runs for this unit."""
    return argv("systemctl", "restart", unit_name(name))


def reload_handler(name: str) -> str:
    """Handler name for `with_notify`: the engine maps `reload:UNIT` to `systemctl reload UNIT`."""
    return f"reload:{name}"


def restart_handler(name: str) -> str:
    """Handler name for `with_notify`: the engine maps `restart:UNIT` to `systemctl restart UNIT`."""
    return f"restart:{name}"


@dataclass(eq=False)
class Service(Primitive):
    """Ensure a unit is enabled at boot and/or running; None leaves that aspect alone."""

    name: str
    enabled: bool | None = None
    state: str | None = None
    kind = "service"

    def __post_init__(self) -> None:
        """Typos fail at construction, not on the host."""
        if self.state is not None and self.state not in STATES:
            raise ValueError(f"Service state must be one of {', '.join(STATES)} or None, not {self.state!r}")
        if not self.name or self.name.startswith("-"):
            raise ValueError(f"invalid unit name {self.name!r}")

    @property
    def unit(self) -> str:
        """Full unit name with its type suffix."""
        return unit_name(self.name)

    @property
    def ident(self) -> str:
        """Reports name the unit."""
        return f"service[{self.unit}]"

    def probe(self, facts: Facts) -> str:
        """One process: LoadState says whether the unit exists, the others what it does now."""
        return argv("systemctl", "show", "-p", "LoadState", "-p", "UnitFileState", "-p", "ActiveState", "--",
                    self.unit)

    def reads(self) -> frozenset[str]:
        """systemd's units (a start may start others) and the directories unit files are loaded from."""
        return frozenset({UNITS, *(path(d) for d in UNIT_DIRS)})

    def writes(self) -> frozenset[str]:
        """Units, and the enable/mask links under /etc/systemd/system. What a started service writes itself is
        not declared: a primitive that reads it belongs in a later ensure (or step) than the start."""
        return frozenset({UNITS, path("/etc/systemd/system")})

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """Unmask, enable/disable, start/stop: only the actions whose state differs."""
        kv = parse_kv(probe_output)
        load = kv.get("LoadState", "")
        if not load:
            return Plan(missing=f"cannot query {self.unit}: systemd is not running on this host")
        if load == "not-found":
            return Plan(missing=f"unit {self.unit} not found")
        file_state = kv.get("UnitFileState", "") or "unknown"
        active = kv.get("ActiveState", "") or "unknown"
        unit = self.unit
        commands: list[str] = []
        actions: list[str] = []
        diff: list[str] = []
        masked = load == "masked" or file_state.startswith("masked")
        if masked and (self.enabled or self.state == "started"):
            commands.append(argv("systemctl", "unmask", unit))
            actions.append("unmask")
        if self.enabled is True and (masked or file_state not in ENABLED_OK):
            commands.append(argv("systemctl", "enable", unit))
            actions.append("enable")
            diff.append(f"enabled: {file_state} -> enabled")
        elif self.enabled is False and file_state in NOT_ENABLED:
            commands.append(argv("systemctl", "disable", unit))
            actions.append("disable")
            diff.append(f"enabled: {file_state} -> disabled")
        if self.state == "started" and active not in RUNNING:
            commands.append(argv("systemctl", "start", unit))
            actions.append("start")
            diff.append(f"active: {active} -> active")
        elif self.state == "stopped" and active in RUNNING:
            commands.append(argv("systemctl", "stop", unit))
            actions.append("stop")
            diff.append(f"active: {active} -> inactive")
        if not commands:
            return Plan()
        return Plan(changed=True, summary=f"{', '.join(actions)} {self.unit}", diff="\n".join(diff) + "\n",
                    commands=commands)
