"""docker: the engine from the family's packages, TLS API on 2376 from the stage CA, docker0 from internal_cidr.

hive-builder.md §3.13. Firewall rule sets (docker_api_swarm, docker_swarm_udp, http_proxy) come from
hive_nornir/tasks/net/firewall.py.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.netslice import slice_internal_cidr
from hive_nornir.pki_paths import ca_anchor_path, host_cert_path, host_key_path
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.service import Service
from hive_nornir.primitives.users import Group, User
from hive_nornir.tasks.host.base_env import DEFAULT_PROXY_PORT
from hive_nornir.tasks.net.firewall import rule_set_for

DOCKER_API_PORT = 2376
DAEMON_JSON = "/etc/docker/daemon.json"
OVERRIDE_DIR = "/usr/lib/systemd/system/docker.service.d"  # hive-builder's path (merged /usr on both families)
OVERRIDE_CONF = f"{OVERRIDE_DIR}/override.conf"
EL_REPO_FILE = "/etc/yum.repos.d/docker-ce.repo"
EL_REPO = """\
[docker-ce-stable]
name=Docker CE Stable - $basearch
baseurl=https://download.docker.com/linux/centos/$releasever/$basearch/stable
enabled=1
gpgcheck=1
gpgkey=https://download.docker.com/linux/centos/gpg
"""
# dockerd >= 23 can vet a config file; 20.10 (Debian 12's docker.io) cannot, so ask it first.
VALIDATE = ("if dockerd --help 2>&1 | grep -q -- --validate; "
            "then dockerd --validate --config-file %s; fi")
# systemd flags edited drop-ins (NeedDaemonReload) but not a new drop-in dir: also ask whether it loaded ours.
LOADED = ("s=$(systemctl show -p NeedDaemonReload -p DropInPaths docker.service); "
          f"case \"$s\" in *NeedDaemonReload=yes*) false;; *{OVERRIDE_CONF}*) true;; *) false;; esac")


def docker_packages(facts: Facts) -> list[str]:
    """Debian ships docker.io; EL gets docker-ce (and the libseccomp it needs) from docker's repo."""
    if facts.is_redhat:
        return ["libseccomp", "docker-ce"]
    return ["docker.io"]


# Where the host's dockerd is (the package decides), read after the packages are installed.
DOCKERD_PROBE = "command -v dockerd || true"


def dockerd_path(facts: Facts, found: str | None = None) -> str:
    """The dockerd the host has (`command -v dockerd`), else the family's: Debian's docker.io installs
    /usr/sbin/dockerd; docker-ce (EL) and Ubuntu's docker.io install /usr/bin/dockerd."""
    found = (found or "").strip()
    if found.startswith("/") and found.endswith("/dockerd") and " " not in found:
        return found
    return "/usr/sbin/dockerd" if facts.is_debian and facts.os_id != "ubuntu" else "/usr/bin/dockerd"


def daemon_config(host: str, facts: Facts, registry_mirror: str | None = None,
                  vfs: bool = False) -> dict[str, Any]:
    """§3.13's daemon.json: unix socket + TLS-verified TCP on 2376 with the stage CA and the host's cert."""
    config: dict[str, Any] = {
        "hosts": ["unix:///var/run/docker.sock", f"tcp://0.0.0.0:{DOCKER_API_PORT}"],
        "tls": True,
        "tlsverify": True,
        "tlscacert": ca_anchor_path(facts),
        "tlscert": host_cert_path(host),
        "tlskey": host_key_path(host),
    }
    if registry_mirror:
        config["registry-mirrors"] = [registry_mirror]
    if vfs:
        config["storage-driver"] = "vfs"
    config["iptables"] = True
    return config


def daemon_json(host: str, facts: Facts, registry_mirror: str | None = None, vfs: bool = False) -> str:
    """The file's exact text (stable key order, so an unchanged config never shows a diff)."""
    return json.dumps(daemon_config(host, facts, registry_mirror, vfs), indent=2) + "\n"


def override_conf(facts: Facts, bip: str, dockerd: str | None = None) -> str:
    """Drop-in: dockerd without `-H fd://` (it conflicts with "hosts" in daemon.json) and with docker0's --bip."""
    return ("[Service]\n"
            "RestartSec=15s\n"
            "EnvironmentFile=-/etc/environment\n"
            "ExecStart=\n"
            f"ExecStart={dockerd_path(facts, dockerd)} --bip={bip}\n")


def admin_user(ctx: TaskContext) -> str | None:
    """hive_admin (the login user unless the site names another); root needs no docker group."""
    name = str(ctx.var("hive_admin") or getattr(ctx.host, "username", None) or "admin")
    return None if name == "root" else name


def uses_vfs(ctx: TaskContext) -> bool:
    """§3.13: storage-driver vfs only on a shared-repository container (overlay on overlay fails there)."""
    groups = {str(getattr(g, "name", g)) for g in ctx.host.groups}
    return bool(ctx.var("hive_shared_repository")) and "repository" in groups


def etc_docker_mode(facts: Facts, groups: set[str]) -> str:
    """hive-builder's 0700, except where Debian's docker-registry package (the repository) owns /etc/docker/registry:
    dpkg makes /etc/docker 0755 for its service user, so 0700 would break the registry and flip back on every run.
    daemon.json holds only paths; the TLS key lives in /etc/pki/tls/private (0700)."""
    return "0755" if facts.is_debian and "repository" in groups else "0700"


def package_primitives(facts: Facts, admin: str | None) -> list[Primitive]:
    """Repo, packages, the docker group and the admin in it: what must exist before dockerd can be found."""
    items: list[Primitive] = []
    if facts.is_redhat:
        items.append(File(path=EL_REPO_FILE, content=EL_REPO))
    items.append(Packages(names=docker_packages(facts)))
    items.append(Group(name="docker", system=True))
    if admin:
        items.append(User(name=admin, groups=("docker",), shell=None))
    return items


def engine_primitives(host: str, facts: Facts, admin: str | None, internal_cidr: str | None,
                      registry_mirror: str | None = None, vfs: bool = False,
                      etc_mode: str = "0700", dockerd: str | None = None) -> list[Primitive]:
    """Repo, packages, group, config, unit drop-in, then the service; config changes restart docker once."""
    return [*package_primitives(facts, admin),
            *config_primitives(host, facts, internal_cidr, registry_mirror, vfs, etc_mode, dockerd)]


def config_primitives(host: str, facts: Facts, internal_cidr: str | None, registry_mirror: str | None = None,
                      vfs: bool = False, etc_mode: str = "0700", dockerd: str | None = None) -> list[Primitive]:
    """Unit drop-in (ExecStart = the host's dockerd), daemon.json, then the service."""
    nets = slice_internal_cidr(internal_cidr)
    items: list[Primitive] = []
    items.extend([
        Directory(path=OVERRIDE_DIR, mode="0755"),
        # drop-in before daemon.json: a restart with "hosts" set but `-H fd://` still in the unit would fail
        File(path=OVERRIDE_CONF, content=override_conf(facts, nets.bip, dockerd)).with_notify("restart:docker"),
        Directory(path="/etc/docker", mode=etc_mode),
        File(path=DAEMON_JSON, content=daemon_json(host, facts, registry_mirror, vfs), mode="0644",
             validate=VALIDATE).with_notify("restart:docker"),
        Command(cmd="systemctl daemon-reload", unless=LOADED),
        Service(name="docker", enabled=True, state="started"),
    ])
    return items


def firewall_primitives(ctx: TaskContext) -> list[Primitive]:
    """Swarm and TLS API ports from every server before the engine starts; the proxy port when there is one."""
    items = [*rule_set_for(ctx, "docker_api_swarm"), *rule_set_for(ctx, "docker_swarm_udp")]
    if ctx.var("hive_http_proxy"):
        nets = slice_internal_cidr(ctx.var("hive_internal_cidr"))
        docker0 = str(ipaddress.ip_interface(nets.bip).network)
        port = int(ctx.var("hive_http_proxy_port") or DEFAULT_PROXY_PORT)
        items += rule_set_for(ctx, "http_proxy", "tcp", [port], extra_sources=[nets.gwbridge_for_firewall, docker0])
    return items


def docker_engine(ctx: TaskContext) -> None:
    """Runs on every server; the runbook's Step flushes handlers so swarm sees the restarted engine."""
    mirror = ctx.var("hive_registry_mirror")
    ctx.ensure([*firewall_primitives(ctx), *package_primitives(ctx.facts, admin_user(ctx))])
    found = ctx.run(DOCKERD_PROBE, check=False).stdout  # read-only; empty in check mode before the install
    ctx.ensure(config_primitives(ctx.name, ctx.facts, ctx.var("hive_internal_cidr"), str(mirror) if mirror else None,
                                 uses_vfs(ctx),
                                 etc_docker_mode(ctx.facts, {str(getattr(g, "name", g)) for g in ctx.host.groups}),
                                 found))
