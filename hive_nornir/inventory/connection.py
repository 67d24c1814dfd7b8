"""Connection details of a host: from the provider's state.json, else from the site's variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .constants import DEFAULT_ADMIN, DEFAULT_SSH_KEY, KNOWN_HOSTS, PLATFORM


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to log in to one host."""

    hostname: str
    port: int
    username: str


def site_endpoint(name: str, data: dict[str, Any]) -> Endpoint:
    """Where the site's variables put a host; the one rule for the inventory and the prepared provider.

    ansible_host > hive_ssh_host > hive_private_ip; ansible_port > hive_sshd_port > 22 (hive-builder's
    ssh_config has no Port, so ansible_port is what moves its connection); ansible_user > hive_admin.
    """
    host = data.get("ansible_host") or data.get("hive_ssh_host") or data.get("hive_private_ip") or name
    port = data.get("ansible_port") or data.get("hive_sshd_port") or 22
    user = data.get("ansible_user") or data.get("hive_admin") or DEFAULT_ADMIN
    return Endpoint(str(host), int(port), str(user))


def endpoint(name: str, data: dict[str, Any], state: dict[str, Any] | None) -> Endpoint:
    """state.json wins (the provider knows the real port); otherwise the site's own variables."""
    entry = ((state or {}).get("hosts") or {}).get(name)
    if isinstance(entry, dict) and entry.get("address"):
        return Endpoint(str(entry["address"]), int(entry.get("port") or 22),
                        str(entry.get("user") or data.get("hive_admin") or DEFAULT_ADMIN))
    return site_endpoint(name, data)


def connection_extras(context_dir: Path, state: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Per-plugin extras (hive_ssh, netmiko) pointing at the stage key pair and known_hosts."""
    context = Path(context_dir).absolute()
    key_file = str(context / str((state or {}).get("ssh_key") or DEFAULT_SSH_KEY))
    known_hosts = str(context / KNOWN_HOSTS)
    hive_ssh: dict[str, Any] = {"key_file": key_file, "known_hosts": known_hosts}
    if (context / "ssh_config").is_file():  # hive-builder's per-stage ssh_config (bastions, ProxyJump)
        hive_ssh["ssh_config"] = str(context / "ssh_config")
    return {
        "hive_ssh": hive_ssh,
        "netmiko": {"use_keys": True, "key_file": key_file, "allow_agent": False, "device_type": PLATFORM,
                    # check host keys against the stage's known_hosts, as hive_ssh does
                    "ssh_strict": True, "system_host_keys": False, "alt_host_keys": True,
                    "alt_key_file": known_hosts},
    }
