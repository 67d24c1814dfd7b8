"""setup-hosts: hive-builder's host roles in its order, as steps tagged with the role names."""

from __future__ import annotations

from hive_nornir.tasks.base import base
from hive_nornir.tasks.hostsfile import hostsfile
from hive_nornir.tasks.ssh_connection import ssh_connection
from hive_nornir.tasks.users import users

from hive_nornir.engine.runbook import Runbook, Step

RUNBOOK = Runbook(
    name="setup-hosts",
    description="configure the OS of every server: base packages, names, time, hosts file, users",
    steps=(
        Step("ssh-connection", ssh_connection, tags=("ssh-connection", "setup-hosts")),
        Step("base", base, tags=("base", "setup-hosts")),
        Step("hostsfile", hostsfile, tags=("hostsfile", "setup-hosts")),
        Step("users", users, tags=("users", "setup-hosts"), when=lambda h: bool(h.get("hive_users"))),
    ),
)
