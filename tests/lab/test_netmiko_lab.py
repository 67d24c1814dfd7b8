"""nornir-netmiko works from the generated inventory, for users who want netmiko_* tasks."""

from __future__ import annotations

import pytest
from nornir_netmiko.tasks import netmiko_send_command

from hive_nornir.api import Hive

pytestmark = pytest.mark.lab


def test_netmiko_send_command_over_the_generated_inventory(lab) -> None:  # type: ignore[no-untyped-def]
    hive = Hive(root=lab.root, stage="private")
    nr = hive.nornir()
    host = lab.hosts[0]
    one = nr.filter(filter_func=lambda h: h.name == host)
    result = one.run(task=netmiko_send_command, command_string="hostname")
    one.close_connections()
    assert not result.failed, result[host][0].result
    assert result[host][0].result.strip() == host.split(".")[0]
