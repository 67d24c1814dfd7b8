"""hostsfile planned offline: exact /etc/hosts before and after, a second plan changes nothing."""

from __future__ import annotations

import pytest
from fake_host import FakeStageHost, plan_task, stage_host

from hive_nornir.engine.errors import StepFailed
from hive_nornir.facts import canned
from hive_nornir.tasks.host.hostsfile import hostsfile

# What a Debian 12 cloud image ships (cloud-init's manage_etc_hosts template).
DEBIAN_CLOUD = ("127.0.1.1 p-hive0.pdns p-hive0\n127.0.0.1 localhost\n\n"
                "# The following lines are desirable for IPv6 capable hosts\n::1 localhost ip6-localhost ip6-loopback\n"
                "ff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n")
EL_STOCK = ("127.0.0.1   localhost localhost.localdomain localhost4 localhost4.localdomain4\n"
            "::1         localhost localhost.localdomain localhost6 localhost6.localdomain6\n")
BLOCK = ("# BEGIN HIVE MANAGED BLOCK servers\n10.77.0.4 p-hive0.pdns p-hive0\n10.77.0.5 p-hive1.pdns p-hive1\n"
         "10.77.0.7 p-repository.pdns p-repository\n# END HIVE MANAGED BLOCK servers\n")


def stage(repo_ip: object = "10.77.0.7") -> dict[str, FakeStageHost | None]:
    hosts = [stage_host("p-hive0.pdns", "servers", "hives", hive_private_ip="10.77.0.4"),
             stage_host("p-hive1.pdns", "servers", hive_private_ip="10.77.0.5"),
             stage_host("p-repository.pdns", "servers", "repository", hive_private_ip=repo_ip),
             stage_host("client", "other", hive_private_ip="10.77.0.9")]
    return {h.name: h for h in hosts}


@pytest.mark.parametrize(("family", "before"), [("debian", DEBIAN_CLOUD), ("redhat", EL_STOCK)])
def test_block_goes_on_top_before_the_loopback_self_name(family: str, before: str) -> None:
    result = plan_task(hostsfile, canned(family), files={"/etc/hosts": before}, stage_hosts=stage())
    assert result.files == {"/etc/hosts": BLOCK + before}
    again = plan_task(hostsfile, canned(family), files={"/etc/hosts": BLOCK + before}, stage_hosts=stage())
    assert again.plans == []


def test_a_changed_address_is_updated_in_place() -> None:
    current = BLOCK.replace("10.77.0.5", "10.77.0.50") + DEBIAN_CLOUD
    result = plan_task(hostsfile, canned("debian"), files={"/etc/hosts": current}, stage_hosts=stage())
    assert result.files == {"/etc/hosts": BLOCK + DEBIAN_CLOUD}


@pytest.mark.parametrize("bad", [None, "", "10.77.0.7\n1.2.3.4 evil"])
def test_a_server_without_a_private_ip_fails_instead_of_writing_none(bad: object) -> None:
    with pytest.raises(StepFailed, match=r"no usable hive_private_ip for p-repository.pdns"):
        plan_task(hostsfile, canned("debian"), files={"/etc/hosts": DEBIAN_CLOUD}, stage_hosts=stage(bad))
