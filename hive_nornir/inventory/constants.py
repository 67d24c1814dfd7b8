"""Names shared by the inventory modules: groups, admin users per provider, secret variables."""

from __future__ import annotations

ALL = "all"
HOSTS = "hosts"
SERVERS = "servers"
HIVES = "hives"
REPOSITORY = "repository"
FIRST_HIVE = "first_hive"
ROLE_GROUPS: tuple[str, ...] = (HOSTS, SERVERS, HIVES, REPOSITORY, FIRST_HIVE)
# Depth of each group in hive-builder's tree: all > hosts > servers > hives/repository; first_hive and the
# stage groups hang directly off all. Ansible merges group vars shallow to deep, equal depth by name.
GROUP_DEPTH: dict[str, int] = {ALL: 0, HOSTS: 1, FIRST_HIVE: 1, SERVERS: 2, HIVES: 3, REPOSITORY: 3}
STAGE_GROUP_DEPTH = 1

PLATFORM = "linux"
DEFAULT_SSH_KEY = "id_ed25519"
KNOWN_HOSTS = "known_hosts"
STATE_FILE = "state.json"

DEFAULT_ADMIN = "admin"
ADMIN_BY_PROVIDER: dict[str, str] = {"vagrant": "vagrant", "aws": "ec2-user", "azure": "hiveadmin"}

# Variables whose values are secrets: reports, tables and logs must mask them.
SECRET_KEYS: frozenset[str] = frozenset({
    "hive_root_password",
    "hive_ca_key",
    "hive_ext_repositories",
    "credentials",
    "ansible_password",
    "ansible_become_password",
    "password",
})
_SECRET_HINTS: tuple[str, ...] = ("password", "secret", "token", "private_key")
MASK = "********"
# the user's own SSH key for a host, as Ansible names it (and its alias); hive_ssh and netmiko offer it first
KEY_VARIABLES: tuple[str, ...] = ("ansible_ssh_private_key_file", "ansible_private_key_file")
