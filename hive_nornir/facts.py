"""Host facts gathered in one round trip: what primitives plan against (OS family, package manager, ...)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from hive_nornir.primitives.probes import SESSION_PROBE, parse_kv, parse_session

# The session-address probe lives with the other shared probes; the name stays for the callers that use it.
CLIENT_PROBE = SESSION_PROBE

# One POSIX sh script; every line it prints is `key=value`, lists are space separated.
FACTS_SCRIPT = r"""
. /etc/os-release 2>/dev/null
echo "os_id=${ID:-unknown}"
echo "os_like=${ID_LIKE:-}"
echo "os_version=${VERSION_ID:-}"
echo "os_pretty=${PRETTY_NAME:-}"
echo "kernel=$(uname -r)"
echo "arch=$(uname -m)"
echo "hostname=$(hostname 2>/dev/null || cat /etc/hostname)"
for pm in apt-get dnf yum; do if command -v $pm >/dev/null 2>&1; then echo "pkg_manager=${pm%-get}"; break; fi; done
if [ -d /run/systemd/system ]; then echo "init=systemd"; else echo "init=other"; fi
echo "addresses=$(ip -o -4 addr show scope global 2>/dev/null | awk '{print $4}' | tr '\n' ' ')"
echo "block_devices=$(lsblk -dn -o NAME,TYPE 2>/dev/null | awk '$2=="disk"{printf "/dev/%s ", $1}')"
echo "openssh=$(sshd -V 2>&1 | sed -n 's/^OpenSSH_\([0-9.p]*\).*/\1/p' | head -n1)"
echo "cloud_init=$(test -d /etc/cloud && echo yes || echo no)"
echo "selinux=$(getenforce 2>/dev/null || echo absent)"
echo "uid=$(id -u)"
""" + SESSION_PROBE + "\n"


@dataclass(frozen=True)
class Facts:
    """What we know about a host; frozen so a cached copy cannot drift from the host silently."""

    os_id: str = "unknown"
    os_family: str = "unknown"  # debian | redhat
    os_version: str = ""
    os_pretty: str = ""
    kernel: str = ""
    arch: str = ""
    hostname: str = ""
    pkg_manager: str = ""  # apt | dnf | yum
    init: str = ""
    addresses: tuple[str, ...] = ()
    block_devices: tuple[str, ...] = ()
    openssh: str = ""
    cloud_init: bool = False
    selinux: str = "absent"
    ssh_client: str = ""  # the address hive_nornir's session comes from, as the host sees it
    ssh_port: int | None = None  # the port sshd received that session on (None: unknown)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_debian(self) -> bool:
        """Debian and Ubuntu share apt and the same file layout."""
        return self.os_family == "debian"

    @property
    def is_redhat(self) -> bool:
        """RHEL, AlmaLinux, Rocky and Fedora share dnf/yum and the same file layout."""
        return self.os_family == "redhat"

    @property
    def major_version(self) -> int:
        """Major OS version, 0 when unknown: several decisions (repos, packages) depend on it."""
        head = self.os_version.split(".")[0]
        return int(head) if head.isdigit() else 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON reports and notebooks."""
        return asdict(self)


def family_of(os_id: str, os_like: str) -> str:
    """Map /etc/os-release ID/ID_LIKE onto the two families we plan for."""
    ids = {os_id, *os_like.split()}
    if ids & {"debian", "ubuntu"}:
        return "debian"
    if ids & {"rhel", "centos", "fedora", "almalinux", "rocky"}:
        return "redhat"
    return "unknown"


def parse_facts(output: str) -> Facts:
    """Turn FACTS_SCRIPT output into Facts; unknown keys are ignored so older hosts still parse."""
    kv = {key: value.strip() for key, value in parse_kv(output).items()}
    client, port = parse_session(output)
    return Facts(
        os_id=kv.get("os_id", "unknown"),
        os_family=family_of(kv.get("os_id", ""), kv.get("os_like", "")),
        os_version=kv.get("os_version", ""),
        os_pretty=kv.get("os_pretty", ""),
        kernel=kv.get("kernel", ""),
        arch=kv.get("arch", ""),
        hostname=kv.get("hostname", ""),
        pkg_manager=kv.get("pkg_manager", ""),
        init=kv.get("init", ""),
        addresses=tuple(kv.get("addresses", "").split()),
        block_devices=tuple(kv.get("block_devices", "").split()),
        openssh=kv.get("openssh", ""),
        cloud_init=kv.get("cloud_init") == "yes",
        selinux=kv.get("selinux", "absent"),
        ssh_client=client,
        ssh_port=port,
    )


def canned(family: str = "debian", **overrides: Any) -> Facts:
    """Facts for tests and docs: a Debian 12 or AlmaLinux 9 host without asking one."""
    base: dict[str, Any] = (
        {"os_id": "debian", "os_family": "debian", "os_version": "12", "pkg_manager": "apt", "openssh": "9.2p1"}
        if family == "debian"
        else {"os_id": "almalinux", "os_family": "redhat", "os_version": "9.4", "pkg_manager": "dnf",
              "openssh": "8.7p1", "selinux": "Enforcing"}
    )
    base.update({"init": "systemd", "hostname": "host", "arch": "x86_64"})
    base.update(overrides)
    return Facts(**base)


def facts_json(facts: Facts) -> str:
    """Facts as JSON for the run journal."""
    return json.dumps(facts.to_dict(), sort_keys=True)
