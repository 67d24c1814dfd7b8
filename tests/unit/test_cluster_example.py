"""The example cluster site (inventory/examples/cluster) loads and gives both hives a keepalived.conf."""

from __future__ import annotations

from pathlib import Path

from hive_nornir.api import Hive
from hive_nornir.phases import load_runbook
from hive_nornir.tasks.cluster.keepalived_conf import VAR, parse, render

EXAMPLE = Path(__file__).resolve().parents[2] / "inventory" / "examples" / "cluster"


def test_example_site_renders_a_pair_and_the_phases_are_registered() -> None:
    hosts = dict(Hive(EXAMPLE, stage="private").nornir().inventory.hosts)
    assert sorted(hosts) == ["p-hive0.clusterdemo", "p-hive1.clusterdemo", "p-hive2.clusterdemo"]
    conf = parse(hosts["p-hive0.clusterdemo"].get(VAR), hosts)
    assert conf.instances[0].hosts == ("p-hive0.clusterdemo", "p-hive1.clusterdemo")  # the hives, not the repository
    text = render(conf, "p-hive1.clusterdemo", hosts)
    assert "unicast_src_ip 10.172.0.5\n    unicast_peer {\n        10.172.0.4\n    }" in text, text
    assert 'notify_master "/usr/bin/logger -t vip VI_DEMO is MASTER here"' in text
    assert [s.name for s in load_runbook("cluster").steps] == ["keepalived", "keepalived-vip"]
    assert [s.name for s in load_runbook("vip-failover").steps] == ["vip-failover"]
