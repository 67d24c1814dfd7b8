"""backup-tools (repository): /usr/bin/hive-backup.sh and the nightly backup.timer that runs it as the admin user."""

from __future__ import annotations

from dataclasses import dataclass

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.file import Template
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.primitives.service import Service
from hive_nornir.tasks.repository.registry import DEB_DATA_DIR, EL_DATA_DIR, daemon_reload_if_needed

SCRIPT = "/usr/bin/hive-backup.sh"
SCRIPTS_DIR = "/var/lib/hive-backup.d"
UNIT_DIR = "/usr/lib/systemd/system"  # hive-builder's place; /lib is /usr/lib on Debian 12 too
SERVICE_UNIT = "backup.service"
TIMER_UNIT = "backup.timer"
ON_CALENDAR = "*-*-* 01:00:00"
DEFAULT_KEEP_DAYS = 3


@dataclass(frozen=True)
class BackupSpec:
    """Who runs the backup, where the registry keeps its data and how long archives stay."""

    admin: str = "admin"
    home: str = "/home/admin"
    zabbix: bool = False
    registry_keep_days: int = DEFAULT_KEEP_DAYS
    zabbix_keep_days: int = DEFAULT_KEEP_DAYS


def script_vars(facts: Facts, spec: BackupSpec) -> dict[str, object]:
    """Debian's registry is the docker-registry package (files on the host); EL's is the registry:2 container."""
    return {
        "scripts_dir": SCRIPTS_DIR,
        "registry_mode": "package" if facts.is_debian else "compose",
        "registry_data": DEB_DATA_DIR if facts.is_debian else EL_DATA_DIR,
        "registry_dir": f"{spec.home}/registry",
        "registry_keep_days": spec.registry_keep_days,
        "zabbix": spec.zabbix,
        "zabbix_mode": "package" if facts.is_debian else "compose",  # Debian: zabbix_server.py's host services
        "zabbix_dir": f"{spec.home}/zabbix",
        "zabbix_keep_days": spec.zabbix_keep_days,
    }


def backup_primitives(facts: Facts, spec: BackupSpec) -> list[Primitive]:
    """Script, per-service script dir, service + timer units, a daemon-reload when they changed, the timer on."""
    return [
        Directory(path=SCRIPTS_DIR, mode="0755"),
        Template(path=SCRIPT, template="repository/hive-backup.sh.j2", variables=script_vars(facts, spec), mode="0755",
                 validate="bash -n %s"),
        Template(path=f"{UNIT_DIR}/{SERVICE_UNIT}", template="repository/backup-service.j2",
                 variables={"user": spec.admin, "script": SCRIPT}),
        Template(path=f"{UNIT_DIR}/{TIMER_UNIT}", template="repository/backup-timer.j2",
                 variables={"on_calendar": ON_CALENDAR}),
        daemon_reload_if_needed(SERVICE_UNIT, TIMER_UNIT),
        Service(name=TIMER_UNIT, enabled=True, state="started"),
    ]


def spec_for(ctx: TaskContext) -> BackupSpec:
    """hive-builder's variables: the admin user and the *_backup_cleanup_days_before retention."""
    admin = str(ctx.var("hive_admin") or "admin")
    return BackupSpec(admin=admin, home=str(ctx.var("hive_home_dir") or f"/home/{admin}"),
                      zabbix=bool(ctx.var("hive_zabbix")),
                      registry_keep_days=int(ctx.var("hive_registry_backup_cleanup_days_before") or DEFAULT_KEEP_DAYS),
                      zabbix_keep_days=int(ctx.var("hive_zabbix_backup_cleanup_days_before") or DEFAULT_KEEP_DAYS))


def backup_tools(ctx: TaskContext) -> None:
    """Nightly backups of the registry (and zabbix, and every deployed service with backup scripts)."""
    facts = ctx.facts
    if not (facts.is_debian or facts.is_redhat):
        raise StepFailed(f"backup-tools: unsupported OS family {facts.os_family!r}")
    ctx.ensure(backup_primitives(facts, spec_for(ctx)))
