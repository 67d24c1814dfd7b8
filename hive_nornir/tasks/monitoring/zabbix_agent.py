"""zabbix-agent (every server, when the site asks for zabbix): the agent reporting to the repository's server.

Debian installs its own `zabbix-agent`; EL installs zabbix's release rpm first, as hive-builder does. The rule
set `zabbix_tcp` (10050) opens the agent to the servers and the zabbix-server container. Not done here (yet): the
docker/drbd/systemd UserParameters and their scripts, ~zabbix/.docker certs and the docker SDK venv.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.netslice import DEFAULT_ZABBIX_SUBNET, slice_internal_cidr
from hive_nornir.primitives.base import Primitive, q
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File, Template
from hive_nornir.primitives.filesystem import Directory, Symlink
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.service import Service, restart_handler
from hive_nornir.tasks.net.firewall import rule_set_for

CONF = "/etc/zabbix/zabbix_agentd.conf"
CONF_LINK = "/etc/zabbix_agentd.conf"
PID_FILE = "/run/zabbix/zabbix_agentd.pid"  # what both families' units expect
INCLUDE_DIR = {"debian": "/etc/zabbix/zabbix_agentd.conf.d", "redhat": "/etc/zabbix/zabbix_agentd.d"}
LOG_FILE = {"debian": "/var/log/zabbix-agent/zabbix_agentd.log", "redhat": "/var/log/zabbix/zabbix_agentd.log"}
SUDOERS = "/etc/sudoers.d/zabbix"
SERVER_PORT = 10051
# Zabbix 7.0 LTS for every EL major it builds (hive-builder's el10 URL, http like it); hive-builder gave EL8 and
# EL9 alike the el8 5.1 rpm (its known bug #14).
ZABBIX_RELEASE = "7.0"
EL_MAJORS = (8, 9, 10)
EL_RELEASE_RPM = "http://repo.zabbix.com/zabbix/{release}/rhel/{major}/x86_64/zabbix-release-latest.el{major}.noarch.rpm"
SELINUX_BOOLEANS = ("authlogin_nsswitch_use_ldap", "domain_can_mmap_files", "daemons_dump_core", "nis_enabled")


@dataclass(frozen=True)
class AgentSpec:
    """Who the agent is and which servers may ask it."""

    hostname: str
    servers: tuple[str, ...]
    server_active: str


def zabbix_subnet(internal_cidr: str | None) -> str:
    """hive-builder's zabbix_default slice (hive_nornir.netslice: 172.31.252.0/22 -> 172.31.255.128/25)."""
    return slice_internal_cidr(internal_cidr).zabbix_default


def zabbix_server_ip(internal_cidr: str | None) -> str:
    """The zabbix-server container: `.2` of the zabbix subnet (172.21.0.2 without internal_cidr)."""
    nets = slice_internal_cidr(internal_cidr)
    if nets.zabbix_server_ip:
        return nets.zabbix_server_ip
    return DEFAULT_ZABBIX_SUBNET.split("/")[0].rsplit(".", 1)[0] + ".2"


def repository_of(stage_hosts: Mapping[str, Any]) -> tuple[str, str]:
    """(inventory name, private ip) of the stage's repository server."""
    for name, host in stage_hosts.items():
        groups = [getattr(g, "name", g) for g in getattr(host, "groups", [])]
        if "repository" in groups:
            return name, str(host.get("hive_private_ip") or "")
    raise StepFailed("zabbix-agent: the stage has no repository server")


def agent_spec(name: str, is_repository: bool, repository: tuple[str, str], internal_cidr: str | None,
               host_service: bool = False) -> AgentSpec:
    """hive-builder: localhost plus the repository; on the repository itself the zabbix-server container.

    host_service: the server is a host service (Debian), so on the repository it connects from the repository's
    own address, not from a container.
    """
    repo_name, repo_ip = repository
    other = zabbix_server_ip(internal_cidr) if is_repository and not host_service else repo_ip
    servers = tuple(s for s in ("127.0.0.1", other) if s)
    return AgentSpec(hostname=name, servers=servers, server_active=f"{repo_name}:{SERVER_PORT}")


def release_rpm(facts: Facts, override: str | None = None) -> str:
    """zabbix's repo definition rpm for this EL major version (a site may name another with
    hive_zabbix_release_rpm); an EL major zabbix has no repository for is refused."""
    if override:
        return override
    if facts.major_version not in EL_MAJORS:
        raise StepFailed(f"zabbix-agent: no Zabbix {ZABBIX_RELEASE} repository for EL{facts.major_version} "
                         f"(only EL{', EL'.join(map(str, EL_MAJORS))}); set hive_zabbix_release_rpm")
    return EL_RELEASE_RPM.format(release=ZABBIX_RELEASE, major=facts.major_version)


def agent_conf(facts: Facts, spec: AgentSpec) -> dict[str, str]:
    """Template variables of zabbix_agentd.conf for this family."""
    family = "redhat" if facts.is_redhat else "debian"
    include = INCLUDE_DIR[family] + ("/*.conf" if family == "debian" else "/")
    return {"pid_file": PID_FILE, "log_file": LOG_FILE[family], "server": ",".join(spec.servers),
            "server_active": spec.server_active, "hostname": spec.hostname, "include": include}


def selinux_primitives(facts: Facts) -> list[Primitive]:
    """The booleans hive-builder turns on for the agent's checks (EL with SELinux on)."""
    if not facts.is_redhat or facts.selinux.lower() in ("absent", "disabled"):
        return []
    return [Command(cmd=f"setsebool -P {b} on", unless=f"getsebool {b} | grep -q -- '--> on$'")
            for b in SELINUX_BOOLEANS]


def agent_primitives(facts: Facts, spec: AgentSpec, rpm: str | None = None) -> list[Primitive]:
    """Repo (EL), package, config (vetted by the agent itself), sudoers, link, running agent."""
    family = "redhat" if facts.is_redhat else "debian"
    restart = restart_handler("zabbix-agent")
    items: list[Primitive] = []
    if facts.is_redhat:
        items.append(Command(cmd=f"rpm -Uvh {q(release_rpm(facts, rpm))}", creates="/etc/yum.repos.d/zabbix.repo"))
    items += [
        Packages(names=["zabbix-agent"]),
        *selinux_primitives(facts),
        Directory(path=INCLUDE_DIR[family], mode="0755"),
        Template(path=CONF, template="monitoring/zabbix-agentd.conf.j2", variables=agent_conf(facts, spec),
                 validate="zabbix_agentd -c %s -t agent.ping").with_notify(restart),
        Symlink(path=CONF_LINK, target=CONF),
        File(path=SUDOERS, content="zabbix ALL=(ALL) NOPASSWD: ALL\nDefaults:zabbix !requiretty\n", mode="0440",
             validate="visudo -cf %s"),
        Service(name="zabbix-agent", enabled=True, state="started"),
    ]
    return items


def zabbix_agent(ctx: TaskContext) -> None:
    """Install and configure the agent; a changed config restarts it at the end of the phase."""
    facts = ctx.facts
    if not (facts.is_debian or facts.is_redhat):
        raise StepFailed(f"zabbix-agent: unsupported OS family {facts.os_family!r}")
    is_repository = any(getattr(g, "name", g) == "repository" for g in ctx.host.groups)
    spec = agent_spec(ctx.name, is_repository, repository_of(ctx.stage_hosts()),
                      ctx.var("hive_internal_cidr"), host_service=facts.is_debian)
    server = [] if facts.is_debian else [zabbix_server_ip(ctx.var("hive_internal_cidr"))]
    ctx.ensure([*rule_set_for(ctx, "zabbix_tcp", extra_sources=server),
                *agent_primitives(facts, spec, ctx.var("hive_zabbix_release_rpm"))])
