"""hive-builder compatibility (issue 10 item 13): its own inventory plugin is the oracle.

Every case of hive-builder's hive_inventory plugin runs through the plugin itself (verbatim, see
hive_builder_oracle.py) and through load_site + build_inventory: what it refuses is refused, what it accepts loads
(with a warning where it does something surprising, an error under --strict) and gives the same hosts, groups and
variables.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hive_builder_oracle import FakeInventory, inventory_of

from hive_nornir.api import Hive
from hive_nornir.inventory import build_inventory
from hive_nornir.site import Site, SiteError, load_site

ROLE_GROUPS = {"hives", "repository", "first_hive"}
ACCEPT, WARN, REFUSE = "accept", "warn", "refuse"


def site_doc(stage: dict[str, Any], name: str = "pdns", stage_name: str = "private") -> dict[str, Any]:
    return {"plugin": "hive_inventory", "name": name, "stages": {stage_name: stage}}


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    inv = tmp_path / "inventory"
    inv.mkdir(parents=True, exist_ok=True)
    path = inv / "hive.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def hive_builder_accepts(doc: dict[str, Any]) -> FakeInventory | None:
    try:
        return inventory_of(doc)
    except Exception:  # noqa: BLE001 - AnsibleParserError, its NameError bug, StopIteration: all are refusals
        return None


def assert_same_inventory(hb: FakeInventory, site: Site, doc: dict[str, Any],
                          ours_only: frozenset[str] = frozenset()) -> None:
    """Hosts, role groups and every variable hive-builder sets are what hive_nornir's inventory holds."""
    for stage_name in doc["stages"]:
        inventory = build_inventory(site, stage_name)
        mother = f"{site.stages[stage_name].prefix}mother.{doc['name']}"
        servers = hb.groups[stage_name] - {mother}
        assert set(inventory.hosts) == servers
        inherited = {**hb.variables["all"], **hb.variables.get(stage_name, {}), **hb.variables.get(mother, {})}
        for name, host in inventory.hosts.items():
            groups = {g.name for g in host.groups}
            assert groups & ROLE_GROUPS == hb.groups_of(name) & ROLE_GROUPS, name
            assert {"servers", "hosts", stage_name} <= groups
            wanted = {**inherited, **(hb.variables["hives"] if "hives" in groups else {}),
                      **hb.variables.get(name, {})}
            got = {k: host.data.get(k, "<unset>") for k in wanted}
            assert got == wanted, name
            unset = {k for k in host.data if k.startswith("hive_") and k not in wanted}
            # ours adds hive_stage and hive_admin (documented); nothing else hive-builder would not set
            assert unset <= {"hive_stage", "hive_admin", *ours_only}, (name, unset)


def check(tmp_path: Path, doc: dict[str, Any], expected: str) -> list[str]:
    """Run the case through hive-builder and hive_nornir; return hive_nornir's warning texts."""
    hb = hive_builder_accepts(doc)
    path = write(tmp_path, doc)
    if expected == REFUSE:
        assert hb is None, "hive-builder accepts this site"
        with pytest.raises(SiteError):
            load_site(path)
        return []
    assert hb is not None, "hive-builder refuses this site"
    site = load_site(path)
    assert_same_inventory(hb, site, doc)
    warnings = [str(w) for w in site.warnings]
    if expected == ACCEPT:
        assert warnings == []
    else:
        assert warnings, "expected a warning"
        with pytest.raises(SiteError):
            load_site(path, strict=True)
    return warnings


VAGRANT = {"provider": "vagrant", "cidr": "192.168.56.0/24"}
AWS = {"provider": "aws", "cidr": "10.0.0.0/16", "region": "ap-northeast-1"}
PREPARED = {"provider": "prepared", "cidr": "192.168.0.0/24"}

CASES: list[tuple[str, dict[str, Any], str]] = [
    # Stage(): the stage name
    ("defaults: 4 hosts, the last the repository", VAGRANT, ACCEPT),
    # set_provider()
    ("provider missing", {"cidr": "10.0.0.0/24"}, REFUSE),
    ("provider unknown", {**VAGRANT, "provider": "virtualbox"}, REFUSE),
    ("provider openstack (no roles, but the plugin accepts it)", {**PREPARED, "provider": "openstack"}, ACCEPT),
    ("kickstart_config with another provider", {**PREPARED, "kickstart_config": {"iso_src": "a", "iso_dest": "b"}},
     REFUSE),
    ("kickstart with its config", {**PREPARED, "provider": "kickstart",
                                   "kickstart_config": {"iso_src": "a.iso", "iso_dest": "/dev/sdb"}}, ACCEPT),
    ("vagrant with instance_type", {**VAGRANT, "instance_type": "t3.large"}, REFUSE),
    ("vagrant with region", {**VAGRANT, "region": "ap-northeast-1"}, REFUSE),
    ("prepared_resource_group on aws", {**AWS, "prepared_resource_group": True}, REFUSE),
    ("not_support_az on gcp", {**AWS, "provider": "gcp", "not_support_az": True}, REFUSE),
    ("prepared_resource_group and not_support_az on azure",
     {**AWS, "provider": "azure", "prepared_resource_group": True, "not_support_az": True}, ACCEPT),
    ("not_support_az on vagrant (only checked for other providers)", {**VAGRANT, "not_support_az": True}, ACCEPT),
    ("memory_size on aws", {**AWS, "memory_size": 2048}, REFUSE),
    ("memory_size on openstack", {**PREPARED, "provider": "openstack", "memory_size": 2048}, REFUSE),
    ("memory_size on prepared (the swap size)", {**PREPARED, "memory_size": 2048}, ACCEPT),
    ("repository_memory_size on prepared", {**PREPARED, "repository_memory_size": 2048}, REFUSE),
    ("bridge on aws", {**AWS, "bridge": "br0"}, REFUSE),
    ("dev on prepared", {**PREPARED, "dev": "virbr0"}, REFUSE),
    ("vagrant sizes, bridge and dev", {**VAGRANT, "memory_size": 4096, "repository_memory_size": 2048, "cpus": 2,
                                       "repository_cpus": 1, "bridge": "br0", "dev": "virbr0"}, ACCEPT),
    # add_stage_group(): custom_hostname
    ("custom_hostname with an underscore", {**VAGRANT, "custom_hostname": "web_hive"}, REFUSE),
    ("custom_hostname of one character", {**VAGRANT, "custom_hostname": "w"}, REFUSE),
    ("custom_hostname + name of 54 characters", {**VAGRANT, "custom_hostname": "c" * 50}, ACCEPT),
    ("custom_hostname + name of 55 characters", {**VAGRANT, "custom_hostname": "c" * 51}, REFUSE),
    # set_subnets()
    ("cidr missing", {"provider": "vagrant"}, REFUSE),
    ("cidr with host bits", {**VAGRANT, "cidr": "192.168.56.1/24"}, REFUSE),
    ("cidr too small for the hosts (3 are skipped)", {**VAGRANT, "cidr": "192.168.56.0/29"}, REFUSE),
    ("cidr just large enough", {**VAGRANT, "cidr": "192.168.56.0/29", "number_of_hosts": 3}, ACCEPT),
    ("mother variables", {**AWS, "filestore_cidr": "10.255.0.0/26"}, ACCEPT),
    ("subnets round-robin, default names, zones",
     {**AWS, "number_of_hosts": 5, "subnets": [{"cidr": "10.0.0.0/24", "available_zone": "ap-northeast-1d"},
                                               {"cidr": "10.0.1.0/24"}, {"cidr": "10.0.2.0/24", "name": "c"}]},
     ACCEPT),
    ("azure zones", {**AWS, "provider": "azure", "number_of_hosts": 4}, ACCEPT),
    ("az_suffix_list", {**AWS, "az_suffix_list": ["-x", "-y"]}, ACCEPT),
    ("subnet without cidr", {**AWS, "subnets": [{"name": "a"}]}, REFUSE),
    ("subnet with host bits", {**AWS, "subnets": [{"cidr": "10.0.0.1/24"}]}, REFUSE),
    ("subnet smaller than 4 host addresses (4 are skipped)",
     {**AWS, "subnets": [{"cidr": "10.0.0.0/24"}, {"cidr": "10.0.1.0/30"}], "number_of_hosts": 1}, REFUSE),
    ("subnet too small for its hosts", {**AWS, "subnets": [{"cidr": "10.0.0.0/29"}], "number_of_hosts": 3},
     REFUSE),
    ("subnet outside cidr", {**AWS, "subnets": [{"cidr": "10.1.0.0/24"}]}, WARN),
    ("overlapping subnets", {**AWS, "subnets": [{"cidr": "10.0.0.0/24"}, {"cidr": "10.0.0.0/25"}]}, WARN),
    ("two subnets with one name", {**AWS, "subnets": [{"cidr": "10.0.0.0/24", "name": "a"},
                                                      {"cidr": "10.0.1.0/24", "name": "a"}]}, WARN),
    # add_hives()
    ("separate_repository false: 3 hosts, the last a hive too", {**VAGRANT, "separate_repository": False},
     ACCEPT),
    ("quoted 'False' is true for hive-builder", {**VAGRANT, "separate_repository": "False"}, WARN),
    ("shared_repository", {**PREPARED, "shared_repository": {"context_dir": "/srv/repo", "ssh_port": 2222}},
     ACCEPT),
    ("shared_repository without a separate repository (hive-builder's NameError)",
     {**PREPARED, "separate_repository": False, "shared_repository": {"context_dir": "/srv/repo"}}, REFUSE),
    ("number_of_hosts 1 with a separate repository", {**PREPARED, "number_of_hosts": 1}, WARN),
    ("number_of_hosts 1 without a separate repository", {**PREPARED, "number_of_hosts": 1,
                                                          "separate_repository": False}, ACCEPT),
    ("ip_address_list", {**PREPARED, "ip_address_list": ["192.168.0.10", "192.168.0.20", "192.168.0.30"]},
     ACCEPT),
    ("ip_address_list outside cidr", {**PREPARED, "ip_address_list": ["192.168.0.10", "10.9.9.9"]}, WARN),
    ("ip_address_list with subnets: the count from the list, the addresses from the subnets",
     {**AWS, "ip_address_list": ["10.0.0.9", "10.0.0.10", "10.0.0.11"], "subnets": [{"cidr": "10.0.0.0/24"}]},
     WARN),
    ("ip_address_list with another number_of_hosts", {**PREPARED, "number_of_hosts": 4,
                                                      "ip_address_list": ["192.168.0.10", "192.168.0.20"]}, WARN),
    ("ip_address_list with an address twice", {**PREPARED, "ip_address_list": ["192.168.0.10", "192.168.0.10"]},
     WARN),
    ("per-server keys", {**PREPARED, "root_password": "pw", "kernel_version": "5.14.0-570.el9.x86_64",
                         "drbd_download_url": "https://example.com/drbd.tar.gz", "internal_cidr": "172.31.252.0/22",
                         "internal_cidr_v6": "fd00:1::/64", "image_name": "img"}, ACCEPT),
    ("internal_cidr overlapping cidr", {**PREPARED, "internal_cidr": "192.168.0.0/22"}, WARN),
    ("hive and repository keys", {**AWS, "instance_type": "t3.large", "repository_instance_type": "t3.small",
                                  "disk_size": 40, "repository_disk_size": 80, "mirrored_disk_size": 10}, ACCEPT),
    ("hive and repository keys on a shared last host",
     {**AWS, "separate_repository": False, "instance_type": "t3.large", "repository_instance_type": "t3.small",
      "disk_size": 40, "repository_disk_size": 80, "mirrored_disk_size": 10}, ACCEPT),
    # add_hives(): encryption needs kms_key_id on the hosts the key applies to
    ("disk_encrypted without kms_key_id", {**AWS, "disk_encrypted": True}, REFUSE),
    ("disk_encrypted: false without kms_key_id (the key's presence counts)", {**AWS, "disk_encrypted": False},
     REFUSE),
    ("disk_encrypted without kms_key_id, one host (only the repository)", {**AWS, "disk_encrypted": True,
                                                                           "number_of_hosts": 1}, WARN),
    ("mirrored_disk_encrypted without kms_key_id on a shared last host",
     {**AWS, "mirrored_disk_encrypted": True, "separate_repository": False}, REFUSE),
    ("mirrored_disk_encrypted without kms_key_id, separate repository (hive-builder checks the last host only)",
     {**AWS, "mirrored_disk_encrypted": True}, ACCEPT),
    ("repository_disk_encrypted without kms_key_id", {**AWS, "repository_disk_encrypted": True}, REFUSE),
    ("every encryption key with kms_key_id",
     {**AWS, "kms_key_id": "arn:aws:kms:ap-northeast-1:1:key/k", "disk_encrypted": True,
      "mirrored_disk_encrypted": True, "repository_disk_encrypted": True, "separate_repository": False}, ACCEPT),
    # what the plugin ignores
    ("unknown stage key", {**VAGRANT, "numer_of_hosts": 2}, WARN),
    ("nameservers (documented, unused)", {**VAGRANT, "nameservers": ["8.8.8.8"]}, ACCEPT),
]


@pytest.mark.parametrize(("doc", "expected"), [(d, e) for _, d, e in CASES], ids=[c[0] for c in CASES])
def test_hive_builder_case(tmp_path: Path, doc: dict[str, Any], expected: str) -> None:
    check(tmp_path, site_doc(doc), expected)


def test_stage_name_must_be_hive_builders(tmp_path: Path) -> None:
    check(tmp_path, site_doc(VAGRANT, stage_name="prod"), REFUSE)
    for stage_name in ("private", "staging", "production"):
        check(tmp_path / stage_name, site_doc(VAGRANT, stage_name=stage_name), ACCEPT)


def test_unknown_top_key_and_a_name_that_is_no_dns_name(tmp_path: Path) -> None:
    warnings = check(tmp_path, {**site_doc(VAGRANT, name="my_site"), "colour": "blue"}, WARN)
    assert len(warnings) == 2 and "colour: unknown key" in warnings[1] and "name: 'my_site'" in warnings[0]


def test_three_sites_hive_builder_accepts_were_refused(tmp_path: Path) -> None:
    """The issue's three: each loads now, with a warning naming file:line:key, and --strict refuses it."""
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "one": ({**PREPARED, "number_of_hosts": 1}, "hive.yml:7: stages.private.number_of_hosts: 1 makes the "
                                                     "only host the repository"),
        "outside": ({**PREPARED, "ip_address_list": ["192.168.0.10", "10.9.9.9"]},
                    "hive.yml:9: stages.private.ip_address_list[1]: '10.9.9.9' is outside cidr 192.168.0.0/24"),
        "both": ({**AWS, "ip_address_list": ["10.0.0.9"], "subnets": [{"cidr": "10.0.0.0/24"}]},
                 "hive.yml:8: stages.private.ip_address_list: only sets the number of hosts"),
    }
    for name, (stage, text) in cases.items():
        warnings = check(tmp_path / name, site_doc(stage), WARN)
        assert any(text in w for w in warnings), warnings


def test_three_sites_hive_builder_refuses_were_accepted(tmp_path: Path) -> None:
    for key in ("disk_encrypted", "mirrored_disk_encrypted", "repository_disk_encrypted"):
        stage = {**AWS, key: True, "separate_repository": False}
        check(tmp_path / key, site_doc(stage), REFUSE)
        with pytest.raises(SiteError) as info:
            load_site(tmp_path / key / "inventory" / "hive.yml")
        (issue,) = info.value.issues
        assert (issue.key, issue.line) == (f"stages.private.{key}", 8)
        assert issue.problem == "requires kms_key_id (hive-builder refuses it without one)"


def test_two_stages_each_as_hive_builder_has_them(tmp_path: Path) -> None:
    doc = {"plugin": "hive_inventory", "name": "pdns",
           "stages": {"private": VAGRANT, "production": {**AWS, "separate_repository": False}}}
    hb = inventory_of(doc)
    # hive-builder's one `hives` group var names the last stage's first hive for every stage (its bug);
    # hive_nornir keeps it per stage: compare the other variables, and the swarm master per stage by name
    swarm_master = hb.variables["hives"].pop("hive_swarm_master")
    assert swarm_master == "hive0.pdns"
    site = load_site(write(tmp_path, doc))
    assert_same_inventory(hb, site, doc, ours_only=frozenset({"hive_swarm_master"}))
    assert build_inventory(site, "private").hosts["p-hive0.pdns"].data["hive_swarm_master"] == "p-hive0.pdns"


@pytest.mark.parametrize(("stage", "why"), [
    ({**PREPARED, "number_of_hosts": 0}, "a stage without servers"),
    ({**PREPARED, "cidr": "fd00::/64"}, "IPv6 host networks"),
    ({**PREPARED, "ip_address_list": ["192.168.0.10", "web1"]}, "an address that is not an IPv4 address"),
    ({**PREPARED, "disk_size": "20G"}, "a value of the wrong kind (hive-builder's roles fail on it later)"),
    ({**PREPARED, "provider": "kickstart", "kickstart_config": {"iso_src": "a.iso"}}, "kickstart without iso_dest"),
    ({**PREPARED, "kernel_version": "{{ k }}"}, "Jinja (hive_nornir does not template site files)"),
])
def test_refused_on_purpose_though_hive_builder_accepts(tmp_path: Path, stage: dict[str, Any], why: str) -> None:
    """The documented exceptions (README): hive-builder's plugin passes these through and fails later, on the
    hosts or in its roles; hive_nornir refuses them before any host is touched."""
    doc = site_doc(stage)
    assert hive_builder_accepts(doc) is not None, why
    with pytest.raises(SiteError):
        load_site(write(tmp_path, doc))


def test_warnings_reach_stderr_the_api_and_the_json_report(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, site_doc({**PREPARED, "cidr": "10.98.0.0/24", "number_of_hosts": 1}))
    where = f"{path}:7: stages.private.number_of_hosts: 1 makes the only host the repository"
    with caplog.at_level("WARNING", logger="hive_nornir.site"):
        hive = Hive(root=tmp_path)
    assert any(where in r.getMessage() for r in caplog.records)
    assert any(where in w for w in hive.warnings()) and hive.site.warnings[0].warning
    with pytest.raises(SiteError):
        Hive(root=tmp_path, strict=True)
    done = subprocess.run([sys.executable, "-m", "hive_nornir", "-r", str(tmp_path), "inventory"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert [line for line in done.stderr.splitlines() if line.startswith("warning: ")] == [f"warning: {w}" for w
                                                                                          in hive.warnings()]
    assert done.stderr.count(where) == 1  # once, not again through the logging handler
    report = tmp_path / "report.json"
    # -T with a tag that selects nothing on this host would still connect; a check run of build-infra does not
    done = subprocess.run([sys.executable, "-m", "hive_nornir", "-r", str(tmp_path), "run", "build-infra", "-C",
                           "--json", str(report)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert any(where in w for w in json.loads(report.read_text())["warnings"])
    strict = subprocess.run([sys.executable, "-m", "hive_nornir", "--strict", "-r", str(tmp_path), "inventory"],
                            capture_output=True, text=True, timeout=120)
    assert strict.returncode == 2 and "(refused by --strict)" in strict.stderr and "Traceback" not in strict.stderr
