"""The Nornir connection plugin `hive_ssh`, and session_for(): a host's cached session, reopened when dead."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_nornir.inventory.constants import KEY_VARIABLES
from hive_nornir.transport.forward import attach_for_host
from hive_nornir.transport.params import build_params
from hive_nornir.transport.session import SSHSession, connect

if TYPE_CHECKING:
    from nornir.core.configuration import Config
    from nornir.core.inventory import Host

CONNECTION_NAME = "hive_ssh"

log = logging.getLogger(__name__)


class HiveSSH:
    """Nornir connection plugin `hive_ssh`: `host.get_connection("hive_ssh", cfg)` returns an SSHSession."""

    connection: SSHSession | None = None

    def open(
        self,
        hostname: str | None,
        username: str | None,
        password: str | None,
        port: int | None,
        platform: str | None,
        extras: dict[str, Any] | None = None,
        configuration: Config | None = None,
    ) -> None:
        """Resolve settings and connect; nothing is cached by nornir if this raises."""
        self.connection = connect(build_params(hostname, username, password, port, extras, configuration))

    def close(self) -> None:
        """Close the session (idempotent)."""
        if self.connection is not None:
            self.connection.close()


def _from_project(value: Any, extras: dict[str, Any]) -> str:
    """A path from a site variable: `~` expanded, a relative one taken from the project root (where Ansible ran)."""
    path = Path(str(value)).expanduser()
    if not path.is_absolute() and extras.get("known_hosts"):
        path = Path(str(extras["known_hosts"])).parents[2] / path  # <root>/.hive/<stage>/known_hosts
    return str(path)


def host_extras(host: Host) -> dict[str, Any]:
    """hive_ssh extras plus the inventory name (ssh_config lookups) and the site's `hive_ssh_config` and
    `ansible_ssh_private_key_file` variables (host or group; the key is offered before the stage key)."""
    extras = dict(host.get_connection_parameters(CONNECTION_NAME).extras or {})
    extras.setdefault("host_name", str(host.name))
    site_cfg = host.get("hive_ssh_config", None)
    if site_cfg:
        extras["ssh_config"] = _from_project(site_cfg, extras)
    for name in KEY_VARIABLES:
        key = host.get(name, None)
        if key:
            extras["identity_files"] = [_from_project(key, extras)]
            break
    return extras


def _open(host: Host, config: Config) -> SSHSession:
    """Open (or reuse) the host's hive_ssh connection with host_extras()."""
    if CONNECTION_NAME not in host.connections:
        host.open_connection(CONNECTION_NAME, configuration=config, extras=host_extras(host))
    session: SSHSession = host.connections[CONNECTION_NAME].connection
    return session


def session_for(host: Host, config: Config) -> SSHSession:
    """The host's cached session, reopened once if it died (reboot, sshd restart, idle drop)."""
    session = _open(host, config)
    if session.is_alive():
        return attach_for_host(host, session)
    log.info("%s: cached SSH session is dead, reconnecting", host.name)
    with contextlib.suppress(Exception):
        host.close_connection(CONNECTION_NAME)
    host.connections.pop(CONNECTION_NAME, None)
    return attach_for_host(host, _open(host, config))  # the proxy forward (forward.py) lives on the new session
