"""Connection parameters: explicit arguments, the inventory's extras and ssh_config resolved into ConnectParams."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko

if TYPE_CHECKING:
    from nornir.core.configuration import Config


def expand(path: str) -> str:
    """`~` expansion for config paths."""
    return str(Path(path).expanduser())


@dataclass(frozen=True)
class Hop:
    """One ProxyJump bastion: where to dial and who to log in as."""

    hostname: str
    port: int
    username: str
    key_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConnectParams:
    """Everything needed to (re)open a session, resolved once from args, extras and ssh_config."""

    hostname: str
    port: int
    username: str
    password: str | None = field(default=None, repr=False)
    key_files: tuple[str, ...] = ()
    look_for_keys: bool = True
    known_hosts: str = "~/.ssh/known_hosts"
    strict_host_key_checking: str = "accept-new"
    connect_timeout: float = 10.0
    connect_retries: int = 3
    keepalive: float = 3.0  # seconds between keepalives the host must answer (ssh's ServerAliveInterval)
    keepalive_count_max: int = 3  # unanswered in a row before the host counts as dead (ServerAliveCountMax)
    proxy_jump: tuple[Hop, ...] = ()
    proxy_command: str | None = None


def _parse_jump(spec: str, default_user: str) -> tuple[str, int, str]:
    """Parse one ProxyJump item `[user@]host[:port]` (IPv6 as `[addr]:port`)."""
    user = default_user
    if "@" in spec:
        user, spec = spec.rsplit("@", 1)
    port = 22
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif spec.count(":") == 1:
        host, port_s = spec.split(":")
        port = int(port_s)
    else:
        host = spec
    return host, port, user


def build_params(
    hostname: str | None,
    username: str | None,
    password: str | None,
    port: int | None,
    extras: dict[str, Any] | None,
    configuration: Config | None = None,
) -> ConnectParams:
    """Resolve connection settings: explicit arguments win over ssh_config, like `ssh -p/-l` do."""
    ex = dict(extras or {})
    if not hostname:
        raise ValueError("hive_ssh needs a hostname")
    cfg_path = ex.get("ssh_config")
    if cfg_path is None and configuration is not None:
        default_cfg = expand(configuration.ssh.config_file or "")
        cfg_path = default_cfg if default_cfg and Path(default_cfg).is_file() else None
    ssh_cfg = paramiko.SSHConfig.from_path(expand(cfg_path)) if cfg_path else None
    name = str(ex.get("host_name") or "")
    by_name = _named_entry(ssh_cfg, name) if ssh_cfg is not None and name else None
    key_file = ex.get("key_file")
    # the user's own keys (ansible_ssh_private_key_file), offered first as `ssh -i` would be; the stage key last
    identity = tuple(expand(str(k)) for k in ex.get("identity_files") or ())
    if by_name is not None:
        # a `Host <inventory name>` entry: reached as `ssh -F ssh_config <name>` would; the inventory fills gaps
        looked = by_name
        real_host = str(looked["hostname"]) if looked.get("hostname") not in (None, name) else hostname
        real_port = int(looked["port"]) if "port" in looked else (
            int(port or 22) if real_host == hostname else 22)
        user = looked.get("user") or username or os.environ.get("USER") or "root"
        stage_key = (expand(str(key_file)),) if key_file else ()
        key_files = identity + tuple(expand(k) for k in looked.get("identityfile", [])) + stage_key
    else:
        looked = dict(ssh_cfg.lookup(hostname)) if ssh_cfg else {}
        real_host = str(looked.get("hostname") or hostname)
        real_port = int(port) if port else int(looked.get("port", 22))
        user = username or looked.get("user") or os.environ.get("USER") or "root"
        cfg_keys = tuple(expand(k) for k in looked.get("identityfile", []))
        key_files = identity + ((expand(str(key_file)),) if key_file else cfg_keys)

    hops: list[Hop] = []
    proxy_command = looked.get("proxycommand")
    if proxy_command and proxy_command.strip().lower() == "none":
        proxy_command = None
    jump_spec = looked.get("proxyjump")
    if jump_spec and jump_spec.strip().lower() != "none" and not proxy_command:
        for item in jump_spec.split(","):
            h, p, u = _parse_jump(item.strip(), user)
            hop_cfg: dict[str, Any] = dict(ssh_cfg.lookup(h)) if ssh_cfg else {}
            hop_keys = tuple(expand(k) for k in hop_cfg.get("identityfile", [])) or key_files
            hop_user = u if "@" in item else str(hop_cfg.get("user") or u)
            hop_port = p if ":" in item else int(hop_cfg.get("port", p))
            hops.append(Hop(str(hop_cfg.get("hostname") or h), hop_port, hop_user, hop_keys))

    return ConnectParams(
        hostname=real_host,
        port=real_port,
        username=str(user),
        password=password,
        key_files=key_files,
        look_for_keys=not key_files,
        known_hosts=str(ex.get("known_hosts") or "~/.ssh/known_hosts"),
        strict_host_key_checking=str(ex.get("strict_host_key_checking", "accept-new")),
        connect_timeout=float(ex.get("connect_timeout", 10)),
        connect_retries=int(ex.get("connect_retries", 3)),
        keepalive=float(ex.get("keepalive", looked.get("serveraliveinterval", 3))),
        keepalive_count_max=int(ex.get("keepalive_count_max", looked.get("serveralivecountmax", 3))),
        proxy_jump=tuple(hops),
        proxy_command=str(proxy_command) if proxy_command else None,
    )


def _named_entry(ssh_cfg: paramiko.SSHConfig, name: str) -> dict[str, Any] | None:
    """The settings for `name` when a Host pattern other than a bare `*` names it, else None (use the address)."""
    patterns = [p for p in ssh_cfg.get_hostnames() if p != "*" and not p.startswith("!")]
    if not any(fnmatch.fnmatchcase(name, p) for p in patterns):
        return None
    return dict(ssh_cfg.lookup(name))
