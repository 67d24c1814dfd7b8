"""Provider `prepared` reaches a real sshd at the port ansible_port names, as the inventory does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import prepared_copy

Lab = Any  # tests/lab/conftest.py:Lab (conftest modules are not imported by name)

pytestmark = pytest.mark.lab


def test_prepared_honours_ansible_port_over_hive_sshd_port(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    """hive_sshd_port names a closed port; only ansible_port leads to the host's published sshd port."""
    from hive_nornir.inventory import build_inventory
    from hive_nornir.providers import get_provider

    lab = make_lab("hsite", "10.90.0.0/24", 1, separate=False)
    host = lab.hosts[0]
    port = lab.ssh_port(host)
    site, ctx = prepared_copy(lab, tmp_path,
                              {host: f"ansible_host: 127.0.0.1\nansible_port: {port}\nhive_sshd_port: 1\n"})
    res = get_provider("prepared").build(site, "private", ctx)
    assert res["hosts"] == {host: ["host_key_recorded"]}
    assert res["state"]["hosts"][host]["port"] == port
    inventory = build_inventory(site, "private", None)  # no state: the inventory's own answer
    assert (inventory.hosts[host].hostname, inventory.hosts[host].port) == ("127.0.0.1", port)
