"""setup-hosts: hive-builder's host roles in its order and on its host groups, each step tagged with its role.

Plays, as in hive-builder's setup-hosts.yml: every server (tag setup-hosts), the repository play (tag repository),
the build-cluster play on hives (tag build-cluster), and addon2 last (tag beforeend-setup-hosts).
"""

from __future__ import annotations

from typing import Any

from hive_nornir.engine.runbook import Runbook, Step
from hive_nornir.tasks.docker.docker_client import docker_client
from hive_nornir.tasks.docker.docker_client_proxy import docker_client_proxy
from hive_nornir.tasks.docker.docker_engine import docker_engine
from hive_nornir.tasks.docker.follow_swarm_service import follow_swarm_service
from hive_nornir.tasks.docker.swarm import swarm_init, swarm_join
from hive_nornir.tasks.host.addon import addon, addon2
from hive_nornir.tasks.host.base import base
from hive_nornir.tasks.host.hostsfile import hostsfile
from hive_nornir.tasks.host.ntp_client import ntp_client
from hive_nornir.tasks.host.pip_venv import pip_venv
from hive_nornir.tasks.host.users import users
from hive_nornir.tasks.logs.rsyslogd import rsyslogd
from hive_nornir.tasks.logs.rsyslogd_client import rsyslogd_client
from hive_nornir.tasks.monitoring.zabbix_agent import zabbix_agent
from hive_nornir.tasks.monitoring.zabbix_server import zabbix_server
from hive_nornir.tasks.net.http_proxy import http_proxy
from hive_nornir.tasks.net.internal_network import internal_network
from hive_nornir.tasks.net.iptables import iptables
from hive_nornir.tasks.pki.tls_certificate import tls_certificate
from hive_nornir.tasks.repository.backup_tools import backup_tools
from hive_nornir.tasks.repository.registry import registry
from hive_nornir.tasks.ssh.ssh_connection import ssh_connection
from hive_nornir.tasks.ssh.sshd import sshd
from hive_nornir.tasks.ssh.strict_source_ip import strict_source_ip
from hive_nornir.tasks.storage.drbd import drbd, drbd_step_wanted

SERVERS = ("setup-hosts",)
REPOSITORY = ("repository", "setup-hosts")
BUILD_CLUSTER = ("build-cluster", "setup-hosts")


def has(key: str) -> Any:
    """Step condition: the host (or its groups) sets `key` to something truthy, like hive-builder's `when`."""
    return lambda host: bool(host.get(key, None))


RUNBOOK = Runbook(
    name="setup-hosts",
    description="configure every server (certificates, base OS, sshd, firewall, users, docker, DRBD pool), "
                "the repository services, and the docker swarm of the hives",
    steps=(
        Step("ssh-connection", ssh_connection, tags=("ssh-connection", *SERVERS)),
        Step("tls-certificate", tls_certificate, tags=("tls-certificate", *SERVERS)),
        # hive-builder's base (setup_proxy_env): sshd GatewayPorts and the forward first, so base's proxy works
        Step("http-proxy", http_proxy, tags=("http-proxy", "base", *SERVERS), when=has("hive_http_proxy")),
        Step("base", base, tags=("base", *SERVERS)),
        Step("hostsfile", hostsfile, tags=("hostsfile", *SERVERS)),
        Step("ntp-client", ntp_client, tags=("ntp-client", *SERVERS), when=has("hive_ntp_servers")),
        Step("iptables", iptables, tags=("iptables", *SERVERS)),
        Step("pip-venv", pip_venv, tags=("pip-venv", *SERVERS)),
        Step("addon", addon, tags=("addon", *SERVERS)),
        Step("internal-network", internal_network, tags=("internal-network", *SERVERS),
             when=has("hive_internal_net_if")),
        Step("users", users, tags=("users", *SERVERS), when=has("hive_users")),
        Step("strict-source-ip", strict_source_ip, tags=("strict-source-ip", *SERVERS),
             when=has("hive_ssh_source_ips")),
        # hive-builder edits sshd in base, users and strict-source-ip; one safe step applies all of it.
        Step("sshd", sshd, tags=("sshd", "base", "users", "strict-source-ip", *SERVERS)),
        Step("docker", docker_engine, tags=("docker", *SERVERS), flush_handlers=True),
        Step("drbd", drbd, tags=("drbd", *SERVERS), when=drbd_step_wanted),
        Step("docker-client", docker_client, tags=("docker-client", *SERVERS)),
        Step("docker-client-proxy", docker_client_proxy, tags=("docker-client-proxy", *SERVERS)),
        Step("follow-swarm-service", follow_swarm_service, groups=("hives",),
             tags=("follow-swarm-service", *SERVERS)),
        Step("zabbix-agent", zabbix_agent, tags=("zabbix-agent", *SERVERS), when=has("hive_zabbix")),
        Step("rsyslogd-client", rsyslogd_client, groups=("hives",), tags=("rsyslogd-client", *SERVERS),
             when=has("hive_tls_logging")),
        Step("zabbix", zabbix_server, groups=("repository",), tags=("zabbix", *REPOSITORY),
             when=has("hive_zabbix")),
        Step("registry", registry, groups=("repository",), tags=("registry", *REPOSITORY)),
        Step("backup-tools", backup_tools, groups=("repository",), tags=("backup-tools", *REPOSITORY)),
        Step("rsyslogd", rsyslogd, groups=("repository",), tags=("rsyslogd", *REPOSITORY), flush_handlers=True),
        Step("swarm-init", swarm_init, groups=("first_hive",), tags=("swarm", *BUILD_CLUSTER)),
        Step("swarm-join", swarm_join, groups=("hives",), tags=("swarm", *BUILD_CLUSTER)),
        Step("addon2", addon2, tags=("addon2", "beforeend-setup-hosts", *SERVERS)),
    ),
)
