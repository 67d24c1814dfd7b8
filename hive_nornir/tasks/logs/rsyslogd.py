"""rsyslogd (repository): collect the swarm services' logs sent to <repository>:10514 into /var/log/services.

The `syslog` rule set of hive_nornir/tasks/net/firewall.py opens the port to every server and the docker_gwbridge
network.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.netslice import slice_internal_cidr
from hive_nornir.pki_paths import ca_anchor_path, host_cert_path, host_key_path
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.file import Template, render
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.service import Service, restart_handler
from hive_nornir.tasks.net.firewall import rule_set_for

PORT = 10514
LOG_DIR = "/var/log/services"
OTHER_FILE = "/var/log/service-other-facility.log"
INCLUDE_DIR = "/etc/rsyslog-services.d"
CONFIG = "/etc/rsyslog.d/services.conf"
LOGROTATE = "/etc/logrotate.d/hive-services"
ROTATE_DAYS = 7
VALIDATE = "rsyslogd -N1 -f %s"  # the candidate on its own: it is a complete config (inputs, templates, ruleset)
TLS_PACKAGES = {"debian": ("rsyslog-gnutls", "gnutls-bin"), "redhat": ("rsyslog-gnutls", "gnutls-utils")}


@dataclass(frozen=True)
class SyslogSpec:
    """The collector on one host: TLS or plain UDP, the stage's server names, who may read the logs."""

    host: str
    hive_hosts: tuple[str, ...] = ()
    tls: bool = False
    log_group: str = "adm"


def packages(facts: Facts, tls: bool) -> list[str]:
    """rsyslog and logrotate everywhere; the gnutls driver only with tls_logging."""
    return ["rsyslog", "logrotate", *(TLS_PACKAGES.get(facts.os_family, ()) if tls else ())]


def log_group(facts: Facts, zabbix: bool) -> str:
    """hive-builder lets the zabbix agent read the logs; without zabbix the group must still exist."""
    if zabbix:
        return "zabbix"
    return "adm" if facts.is_debian else "root"


def server_names(names: Iterable[str]) -> tuple[str, ...]:
    """Inventory and short names of the stage's servers: what a hive's docker daemon puts in HOSTNAME."""
    out: list[str] = []
    for name in names:
        for one in (name, name.split(".", 1)[0]):
            if one not in out:
                out.append(one)
    return tuple(out)


def services_conf(facts: Facts, spec: SyslogSpec) -> str:
    """/etc/rsyslog.d/services.conf as hive-builder routes it (local0, local1, standalone hosts, the rest)."""
    return render("logs/rsyslog-services.conf.j2", **_conf_vars(facts, spec))


def _conf_vars(facts: Facts, spec: SyslogSpec) -> dict[str, object]:
    """Template variables for services.conf."""
    return {"tls": spec.tls, "protocol": "tcp+tls" if spec.tls else "udp", "port": PORT, "log_dir": LOG_DIR,
            "include_dir": INCLUDE_DIR, "other_file": OTHER_FILE, "hive_hosts": spec.hive_hosts,
            "ca_file": ca_anchor_path(facts), "cert_file": host_cert_path(spec.host),
            "key_file": host_key_path(spec.host)}


def rsyslog_primitives(facts: Facts, spec: SyslogSpec) -> list[Primitive]:
    """Packages, directories, the validated config (restart on change), logrotate, running rsyslog."""
    restart = restart_handler("rsyslog")
    return [
        Packages(names=packages(facts, spec.tls)),
        Directory(path=LOG_DIR, mode="0755"),
        Directory(path=INCLUDE_DIR, mode="0755"),
        Template(path=CONFIG, template="logs/rsyslog-services.conf.j2", variables=_conf_vars(facts, spec),
                 validate=VALIDATE).with_notify(restart),
        Template(path=LOGROTATE, template="logs/rsyslog-services.logrotate.j2",
                 variables={"log_dir": LOG_DIR, "other_file": OTHER_FILE, "rotate": ROTATE_DAYS,
                            "group": spec.log_group}),
        Service(name="rsyslog", enabled=True, state="started"),
    ]


def spec_for(ctx: TaskContext) -> SyslogSpec:
    """hive_tls_logging and the zabbix switch from the site; server names from the whole stage (not --limit)."""
    facts = ctx.facts
    return SyslogSpec(host=ctx.name, hive_hosts=server_names(ctx.stage_hosts()),
                      tls=bool(ctx.var("hive_tls_logging")),
                      log_group=log_group(facts, bool(ctx.var("hive_zabbix"))))


def rsyslogd(ctx: TaskContext) -> None:
    """The repository's log collector; a changed config restarts rsyslog once, at the end of the phase."""
    facts = ctx.facts
    if not (facts.is_debian or facts.is_redhat):
        raise StepFailed(f"rsyslogd: unsupported OS family {facts.os_family!r}")
    gwbridge = slice_internal_cidr(ctx.var("hive_internal_cidr")).gwbridge_for_firewall
    proto = "tcp" if ctx.var("hive_tls_logging") else "udp"
    ctx.ensure([*rule_set_for(ctx, "syslog", proto, extra_sources=[gwbridge]),
                *rsyslog_primitives(facts, spec_for(ctx))])
