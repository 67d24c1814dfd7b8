"""The prepared provider and the inventory agree on where a host is (one precedence rule, ansible_port included)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from hive_nornir.inventory import build_inventory
from hive_nornir.inventory.connection import Endpoint, endpoint, site_endpoint
from hive_nornir.providers.prepared import site_endpoints
from hive_nornir.site import Site, load_site


def make_site(root: Path, files: dict[str, str]) -> Site:
    inv = root / "inventory"
    inv.mkdir(parents=True)
    (inv / "hive.yml").write_text("plugin: hive_inventory\nname: t\nstages:\n"
                                  "  private: {provider: prepared, cidr: 10.0.0.0/24}\n")
    for rel, text in files.items():
        (inv / rel).parent.mkdir(parents=True, exist_ok=True)
        (inv / rel).write_text(textwrap.dedent(text))
    return load_site(inv / "hive.yml")


def test_precedence_of_the_site_variables() -> None:
    data = {"hive_private_ip": "10.0.0.4", "hive_sshd_port": 2222, "hive_admin": "admin"}
    assert site_endpoint("h", data) == Endpoint("10.0.0.4", 2222, "admin")
    data |= {"hive_ssh_host": "127.0.0.1", "ansible_port": 2200, "ansible_user": "ops"}
    assert site_endpoint("h", data) == Endpoint("127.0.0.1", 2200, "ops")
    data |= {"ansible_host": "192.0.2.7"}
    assert site_endpoint("h", data) == Endpoint("192.0.2.7", 2200, "ops")
    assert site_endpoint("h", {}) == Endpoint("h", 22, "admin")
    state = {"hosts": {"h": {"address": "127.0.0.1", "port": 32771, "user": "root"}}}
    assert endpoint("h", data, state) == Endpoint("127.0.0.1", 32771, "root")  # the provider's state wins
    assert endpoint("h", data, None) == site_endpoint("h", data)


def test_prepared_provider_uses_the_inventory_rule(tmp_path: Path) -> None:
    site = make_site(tmp_path, {
        "group_vars/servers.yml": "hive_sshd_port: 2222\nansible_port: 2200\n",
        "host_vars/p-hive1.t.yml": "hive_ssh_host: 127.0.0.1\n",
        "host_vars/p-hive2.t.yml": "ansible_host: 192.0.2.9\nhive_ssh_host: 127.0.0.1\nansible_port: 22\n",
    })
    targets = site_endpoints(site, "private")
    assert targets["p-hive0.t"] == Endpoint("10.0.0.4", 2200, "admin")  # ansible_port beats hive_sshd_port
    assert targets["p-hive1.t"] == Endpoint("127.0.0.1", 2200, "admin")
    assert targets["p-hive2.t"] == Endpoint("192.0.2.9", 22, "admin")    # ansible_host beats hive_ssh_host
    inventory = build_inventory(site, "private", None)
    assert targets == {n: Endpoint(h.hostname, h.port, h.username)  # type: ignore[arg-type]
                       for n, h in inventory.hosts.items()}


def test_plan_carries_the_site_ssh_config_to_the_prepared_probe(tmp_path: Path) -> None:
    """hive_ssh_config set in group_vars must reach build-infra (it probes through the bastion with it)."""
    from hive_nornir.providers.common import plan_hosts

    site = make_site(tmp_path, {"group_vars/all.yml": "hive_ssh_config: ssh/bastion.conf\n"})
    plans = plan_hosts(site, "private")
    assert plans and {p.data["hive_ssh_config"] for p in plans} == {"ssh/bastion.conf"}
