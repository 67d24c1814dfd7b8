"""Inventory building: hive-builder's naming, groups, address allocation, var precedence and connections."""

from __future__ import annotations

import json
import stat
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from nornir import InitNornir
from nornir.core.plugins.inventory import InventoryPluginRegister

from hive_nornir.inventory import (
    SECRET_KEYS,
    HiveInventory,
    StateError,
    build_inventory,
    export_simple_inventory,
    inventory_rows,
    mask_secrets,
)
from hive_nornir.site import Site, load_site

PDNS = Path(__file__).parent / "fixtures" / "site_pdns" / "inventory" / "hive.yml"


@pytest.fixture
def pdns() -> Site:
    return load_site(PDNS)


def make_site(tmp_path: Path, text: str, files: dict[str, str] | None = None) -> Site:
    inv = tmp_path / "inventory"
    inv.mkdir(parents=True, exist_ok=True)
    (inv / "hive.yml").write_text(textwrap.dedent(text))
    for rel, body in (files or {}).items():
        (inv / rel).parent.mkdir(parents=True, exist_ok=True)
        (inv / rel).write_text(textwrap.dedent(body))
    return load_site(inv / "hive.yml")


def groups_of(inv, name: str) -> set[str]:  # type: ignore[no-untyped-def]
    return {g.name for g in inv.hosts[name].groups}


# --- naming and roles ------------------------------------------------------------------------------


def test_names_for_all_three_stages(pdns: Site) -> None:
    assert list(build_inventory(pdns, "private").hosts) == ["p-hive0.pdns"]
    assert list(build_inventory(pdns, "staging").hosts) == ["s-hive0.pdns", "s-hive1.pdns", "s-hive2.pdns"]
    assert list(build_inventory(pdns, "production").hosts) == [f"hive{i}.pdns" for i in range(4)]


def test_unknown_stage_names_the_defined_ones(pdns: Site, tmp_path: Path) -> None:
    site = make_site(tmp_path, "plugin: hive_inventory\nname: x\nstages:\n"
                               "  private: {provider: docker, cidr: 10.77.0.0/24}\n")
    with pytest.raises(KeyError, match=r"'production' is not defined in .*\(defined: private\)") as info:
        build_inventory(site, "production")
    assert str(info.value).startswith("stage 'production' is not defined in /")


def test_custom_hostname(tmp_path: Path) -> None:
    site = make_site(tmp_path, """\
        plugin: hive_inventory
        name: example.com
        stages:
          staging: {provider: prepared, cidr: 10.0.0.0/24, custom_hostname: test-hive, number_of_hosts: 2}
        """)
    inv = build_inventory(site, "staging")
    assert list(inv.hosts) == ["s-test-hive0.example.com", "s-test-hive1.example.com"]
    assert inv.hosts["s-test-hive0.example.com"]["hive_custom_hostname"] == "test-hive"
    assert inv.hosts["s-test-hive0.example.com"]["hive_swarm_master"] == "s-test-hive0.example.com"


def test_production_groups_match_hive_builder_table(pdns: Site) -> None:
    inv = build_inventory(pdns, "production")
    assert groups_of(inv, "hive0.pdns") == {"hives", "servers", "hosts", "production", "first_hive"}
    assert groups_of(inv, "hive1.pdns") == {"hives", "servers", "hosts", "production"}
    assert groups_of(inv, "hive2.pdns") == {"hives", "servers", "hosts", "production"}
    assert groups_of(inv, "hive3.pdns") == {"repository", "servers", "hosts", "production"}
    hives = sorted(h.name for h in inv.children_of_group("hives"))
    assert hives == ["hive0.pdns", "hive1.pdns", "hive2.pdns"]
    assert [h.name for h in inv.children_of_group("repository")] == ["hive3.pdns"]
    assert [h.name for h in inv.children_of_group("first_hive")] == ["hive0.pdns"]


def test_shared_repository_host_is_hive_and_repository(pdns: Site) -> None:
    inv = build_inventory(pdns, "staging")
    assert groups_of(inv, "s-hive2.pdns") == {"hives", "repository", "servers", "hosts", "staging"}
    assert groups_of(inv, "s-hive1.pdns") == {"hives", "servers", "hosts", "staging"}
    single = build_inventory(pdns, "private").hosts["p-hive0.pdns"]
    assert {g.name for g in single.groups} == {"hives", "repository", "servers", "hosts", "first_hive", "private"}
    # a host that is also a hive keeps its DRBD disk; the hive keys are applied
    assert single["hive_mirrored_disk_size"] == 20
    assert (single["hive_memory_size"], single["hive_cpus"]) == (4096, 2)


def test_separate_repository_gets_repository_keys_and_no_drbd_disk(pdns: Site) -> None:
    inv = build_inventory(pdns, "production")
    repo, hive = inv.hosts["hive3.pdns"], inv.hosts["hive0.pdns"]
    assert "hive_mirrored_disk_size" not in dict(repo.items())
    assert hive["hive_mirrored_disk_size"] == 20
    assert (repo["hive_disk_size"], hive["hive_disk_size"]) == (100, 60)
    assert repo["hive_instance_type"] == hive["hive_instance_type"] == "t3.large"
    assert hive["hive_vm_image_name"] == "ami-0c972979a1769dfa1"


def test_repository_keys_override_hive_keys_on_a_shared_host(tmp_path: Path) -> None:
    site = make_site(tmp_path, """\
        plugin: hive_inventory
        name: t
        stages:
          private: {provider: vagrant, cidr: 10.0.0.0/24, separate_repository: false, number_of_hosts: 2,
                    memory_size: 2048, repository_memory_size: 8192, mirrored_disk_size: 5}
        """)
    inv = build_inventory(site, "private")
    assert inv.hosts["p-hive0.t"]["hive_memory_size"] == 2048
    last = inv.hosts["p-hive1.t"]
    assert (last["hive_memory_size"], last["hive_mirrored_disk_size"]) == (8192, 5)


# --- addresses -------------------------------------------------------------------------------------


def test_subnet_allocation_matches_hive_builder_worked_example(pdns: Site) -> None:
    inv = build_inventory(pdns, "production")
    got = {n: (h["hive_private_ip"], h["hive_subnet"], h["hive_available_zone"], h["hive_netmask"])
           for n, h in inv.hosts.items()}
    assert got == {
        "hive0.pdns": ("192.168.0.5", "subnet-a", "ap-northeast-1d", "255.255.255.192"),
        "hive1.pdns": ("192.168.0.69", "subnet-b", "ap-northeast-1b", "255.255.255.192"),
        "hive2.pdns": ("192.168.0.133", "subnet-c", "ap-northeast-1c", "255.255.255.192"),
        "hive3.pdns": ("192.168.0.6", "subnet-a", "ap-northeast-1d", "255.255.255.192"),
    }


def test_cidr_allocation_skips_three_addresses(pdns: Site) -> None:
    host = build_inventory(pdns, "private").hosts["p-hive0.pdns"]
    assert (host["hive_private_ip"], host["hive_netmask"], host["hive_subnet"]) == (
        "192.168.56.4", "255.255.255.224", "pdns-default")
    assert "hive_available_zone" not in dict(host.items())  # no region


def test_ip_address_list_in_order(pdns: Site) -> None:
    inv = build_inventory(pdns, "staging")
    ips = [h["hive_private_ip"] for h in inv.hosts.values()]
    assert ips == ["192.168.0.98", "192.168.0.99", "192.168.0.100"]
    assert inv.hosts["s-hive0.pdns"]["hive_netmask"] == "255.255.255.224"


def test_default_subnet_names_and_zone_suffixes(tmp_path: Path) -> None:
    site = make_site(tmp_path, """\
        plugin: hive_inventory
        name: t
        stages:
          staging:
            provider: aws
            cidr: 10.0.0.0/16
            region: eu-west-1
            number_of_hosts: 5
            az_suffix_list: [a, b]
            subnets:
            - {cidr: 10.0.0.0/24}
            - {cidr: 10.0.1.0/24}
            - {cidr: 10.0.2.0/24, available_zone: eu-west-1z}
          production:
            provider: azure
            cidr: 10.1.0.0/24
            region: japaneast
            number_of_hosts: 4
        """)
    inv = build_inventory(site, "staging")
    got = [(h["hive_private_ip"], h["hive_subnet"], h["hive_available_zone"]) for h in inv.hosts.values()]
    assert got == [
        ("10.0.0.5", "s-subnet0", "eu-west-1a"),
        ("10.0.1.5", "s-subnet1", "eu-west-1b"),
        ("10.0.2.5", "s-subnet2", "eu-west-1z"),
        ("10.0.0.6", "s-subnet0", "eu-west-1b"),
        ("10.0.1.6", "s-subnet1", "eu-west-1a"),
    ]
    azure = build_inventory(site, "production")
    assert [h["hive_available_zone"] for h in azure.hosts.values()] == [1, 2, 3, 1]
    assert azure.hosts["hive0.t"]["hive_admin"] == "hiveadmin"


# --- variables -------------------------------------------------------------------------------------


def test_stage_variables(pdns: Site) -> None:
    host = build_inventory(pdns, "production").hosts["hive2.pdns"]
    assert host["hive_name"] == "pdns"
    assert host["hive_stage"] == "production"
    assert host["hive_provider"] == "aws"
    assert host["hive_admin"] == "ec2-user"
    assert host["hive_internal_cidr"] == "172.31.252.0/22"
    assert host["hive_swarm_master"] == "hive0.pdns"
    assert host["hive_region"] == "ap-northeast-1"
    assert [s["name"] for s in host["hive_subnets"]] == ["subnet-a", "subnet-b", "subnet-c"]


def test_swarm_master_is_per_stage(pdns: Site) -> None:
    # hive-builder bug 12: one group var overwritten by the last stage parsed
    masters = {"private": "p-hive0.pdns", "staging": "s-hive0.pdns", "production": "hive0.pdns"}
    for stage, master in masters.items():
        inv = build_inventory(pdns, stage)
        hives = [h for h in inv.hosts.values() if "hives" in h.groups]
        assert {h["hive_swarm_master"] for h in hives} == {master}
        assert inv.groups["hives"].data["hive_swarm_master"] == master


def test_swarm_master_is_a_var_of_the_hives_group_only(pdns: Site, tmp_path: Path) -> None:
    """hive-builder: set_variable('hives', 'hive_swarm_master', ...): a separate repository does not get it."""
    repo = build_inventory(pdns, "production").hosts["hive3.pdns"]
    assert "hive_swarm_master" not in dict(repo.items())
    shared = build_inventory(pdns, "staging").hosts["s-hive2.pdns"]  # repository and hive
    assert shared["hive_swarm_master"] == "s-hive0.pdns"
    site = make_site(tmp_path, "plugin: hive_inventory\nname: t\nstages:\n"
                               "  private: {provider: docker, cidr: 10.0.0.0/24}\n",
                     {"group_vars/hives.yml": "hive_swarm_master: p-hive1.t\n"})
    inv = build_inventory(site, "private")  # a group_vars file beats the plugin's group var
    assert inv.hosts["p-hive0.t"]["hive_swarm_master"] == "p-hive1.t"
    assert "hive_swarm_master" not in dict(inv.hosts["p-hive3.t"].items())


def test_available_zone_only_with_a_region(tmp_path: Path) -> None:
    """hive-builder sets hive_available_zone only `if 'region' in stage`, even when a subnet names a zone."""
    site = make_site(tmp_path, """\
        plugin: hive_inventory
        name: t
        stages:
          private:
            provider: prepared
            cidr: 10.0.0.0/16
            subnets: [{cidr: 10.0.0.0/24, available_zone: zone-x}, {cidr: 10.0.1.0/24}]
          staging:
            provider: prepared
            cidr: 10.1.0.0/16
            region: r1
            subnets: [{cidr: 10.1.0.0/24, available_zone: zone-x}, {cidr: 10.1.1.0/24}]
        """)
    private = build_inventory(site, "private")
    assert all("hive_available_zone" not in dict(h.items()) for h in private.hosts.values())
    staging = build_inventory(site, "staging")
    assert [h["hive_available_zone"] for h in staging.hosts.values()] == ["zone-x", "r1-b", "zone-x", "r1-a"]


@pytest.mark.parametrize(("provider", "admin"), [
    ("vagrant", "vagrant"), ("aws", "ec2-user"), ("azure", "hiveadmin"), ("prepared", "admin"),
    ("docker", "admin"), ("gcp", "admin"),
])
def test_hive_admin_default_per_provider(tmp_path: Path, provider: str, admin: str) -> None:
    site = make_site(tmp_path, f"plugin: hive_inventory\nname: t\nstages:\n"
                               f"  private: {{provider: {provider}, cidr: 10.0.0.0/24}}\n")
    host = build_inventory(site, "private").hosts["p-hive0.t"]
    assert host["hive_admin"] == admin
    assert host.username == admin


# Ansible merges group_vars by group depth (deeper wins), equal depth by name (later wins). Depths in
# hive-builder's tree (hive_inventory.py): all 0; hosts, first_hive and each stage group 1 (children of all);
# servers 2 (child of hosts); hives and repository 3 (children of servers).
DEPTH = {"all": 0, "first_hive": 1, "hosts": 1, "private": 1, "staging": 1, "servers": 2, "hives": 3,
         "repository": 3}


def ansible_winner(setters: tuple[str, ...], groups: set[str]) -> str:
    return max((g for g in setters if g in groups), key=lambda g: (DEPTH[g], g))


def test_group_and_host_var_precedence(tmp_path: Path) -> None:
    pairs = [(a, b) for i, a in enumerate(DEPTH) for b in list(DEPTH)[i + 1:]]
    # group g sets k_<a>__<b> = g for every pair it is part of: each key is one two-way conflict
    files = {f"group_vars/{g}.yml": "".join(f"k_{a}__{b}: {g}\n" for a, b in pairs if g in (a, b))
             for g in DEPTH}
    files["host_vars/p-hive1.t.yml"] = "k_all__hives: host1\nhive_private_ip: 10.0.0.99\nhive_admin: ops\n"
    files["group_vars/all.yml"] += "hive_private_ip: 10.9.9.9\nhive_provider: nonsense\n"
    site = make_site(tmp_path, "plugin: hive_inventory\nname: t\nstages:\n"
                               "  private: {provider: docker, cidr: 10.0.0.0/24}\n"
                               "  staging: {provider: docker, cidr: 10.1.0.0/24, separate_repository: false}\n",
                     files)
    for stage in ("private", "staging"):
        inv = build_inventory(site, stage)
        for name, host in inv.hosts.items():
            groups = {"all", *(g.name for g in host.groups)}
            for a, b in pairs:
                if (a in groups or b in groups) and not (name == "p-hive1.t" and (a, b) == ("all", "hives")):
                    assert host[f"k_{a}__{b}"] == ansible_winner((a, b), groups), (name, a, b)
    private, staging = build_inventory(site, "private"), build_inventory(site, "staging")
    h0, h1, h3 = (private.hosts[f"p-hive{i}.t"] for i in (0, 1, 3))
    shared = staging.hosts["s-hive2.t"]  # hives and repository
    # the same cases spelt out (the first three were wrong before: first_hive and the stage came last)
    assert h0["k_first_hive__hives"] == "hives"          # deeper wins
    assert h0["k_private__servers"] == "servers"         # deeper wins over the stage group
    assert h0["k_first_hive__hosts"] == "hosts"          # equal depth: later name wins
    assert h0["k_hosts__private"] == "private"           # equal depth: later name wins
    assert h3["k_hosts__servers"] == "servers" and h3["k_all__hosts"] == "hosts"
    assert shared["k_hives__repository"] == "repository"
    assert staging.hosts["s-hive0.t"]["k_private__staging"] == "staging"  # the other stage's file: no effect
    assert h0["k_private__staging"] == "private"
    # host_vars override every group
    assert h1["k_all__hives"] == "host1"
    # group_vars override hive-builder's group-level defaults ...
    assert h0["hive_provider"] == "nonsense"
    # ... but not host-level computed values; host_vars override those
    assert h0["hive_private_ip"] == "10.0.0.4"
    assert (h1["hive_private_ip"], h1.hostname, h1.username) == ("10.0.0.99", "10.0.0.99", "ops")
    # Nornir's own lookup agrees with the merged data, and groups carry their group_vars
    assert private.groups["hives"].data["k_all__hives"] == "hives"
    assert private.groups["hosts"].data["k_all__hosts"] == "hosts"
    assert private.defaults.data["k_all__hosts"] == "all"


def test_nornir_group_order_is_ansibles_precedence(pdns: Site) -> None:
    host = build_inventory(pdns, "production").hosts["hive0.pdns"]
    assert [g.name for g in host.groups] == ["hives", "servers", "production", "hosts", "first_hive"]


def test_secret_keys_are_listed_and_maskable(pdns: Site) -> None:
    host = build_inventory(pdns, "staging").hosts["s-hive0.pdns"]
    assert host["hive_root_password"] == "mzYY3qjdvBiD"
    assert "hive_root_password" in SECRET_KEYS
    masked = mask_secrets(dict(host.items()))
    assert masked["hive_root_password"] != "mzYY3qjdvBiD"
    assert masked["hive_private_ip"] == "192.168.0.98"
    nested = mask_secrets({"hive_users": {"a": {"uid": 1}}, "x": [{"db_password": "p"}]})
    assert nested == {"hive_users": {"a": {"uid": 1}}, "x": [{"db_password": "********"}]}


# --- connections -----------------------------------------------------------------------------------


def test_connection_without_state_uses_site_values(tmp_path: Path) -> None:
    site = make_site(tmp_path, "plugin: hive_inventory\nname: t\nstages:\n"
                               "  private: {provider: prepared, cidr: 10.0.0.0/24}\n",
                     {"group_vars/all.yml": "hive_sshd_port: 2222\n"})
    host = build_inventory(site, "private").hosts["p-hive2.t"]
    assert (host.hostname, host.port, host.username, host.platform) == ("10.0.0.6", 2222, "admin", "linux")
    ctx = tmp_path / ".hive" / "private"
    extras = host.get_connection_parameters("hive_ssh").extras
    assert extras == {"key_file": str(ctx / "id_ed25519"), "known_hosts": str(ctx / "known_hosts")}


def write_state(root: Path, stage: str, state: dict[str, Any]) -> Path:
    ctx = root / ".hive" / stage
    ctx.mkdir(parents=True)
    (ctx / "state.json").write_text(json.dumps(state))
    return ctx


def test_hive_inventory_plugin_reads_state_json(tmp_path: Path) -> None:
    make_site(tmp_path, "plugin: hive_inventory\nname: pdns\nstages:\n"
                        "  private: {provider: docker, cidr: 10.77.0.0/24}\n")
    ctx = write_state(tmp_path, "private", {
        "provider": "docker", "stage": "private", "site_name": "pdns", "ssh_key": "lab_key",
        "network": {"name": "hive-pdns-private", "cidr": "10.77.0.0/24"},
        "hosts": {"p-hive0.pdns": {"address": "127.0.0.1", "port": 32771, "user": "root",
                                   "private_ip": "10.77.0.4", "container": "hive-pdns-private-p-hive0"}},
    })
    inv = HiveInventory(root_dir=str(tmp_path), stage="private").load()
    h0, h1 = inv.hosts["p-hive0.pdns"], inv.hosts["p-hive1.pdns"]
    assert (h0.hostname, h0.port, h0.username) == ("127.0.0.1", 32771, "root")
    assert (h1.hostname, h1.port, h1.username) == ("10.77.0.5", 22, "admin")  # not in state yet
    ssh = h0.get_connection_parameters("hive_ssh")
    assert ssh.extras == {"key_file": str(ctx.absolute() / "lab_key"),
                          "known_hosts": str(ctx / "known_hosts")}
    assert (ssh.hostname, ssh.port, ssh.username) == ("127.0.0.1", 32771, "root")
    nm = h0.get_connection_parameters("netmiko")
    assert nm.platform == "linux"
    assert nm.extras == {"use_keys": True, "key_file": str(ctx / "lab_key"), "allow_agent": False,
                         "device_type": "linux", "ssh_strict": True, "system_host_keys": False,
                         "alt_host_keys": True, "alt_key_file": str(ctx / "known_hosts")}


def test_relative_root_gives_absolute_key_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_site(tmp_path, "plugin: hive_inventory\nname: t\nstages:\n"
                        "  private: {provider: docker, cidr: 10.77.0.0/24}\n")
    monkeypatch.chdir(tmp_path)
    host = HiveInventory().load().hosts["p-hive0.t"]
    key = Path((host.get_connection_parameters("hive_ssh").extras or {})["key_file"])
    assert key.is_absolute() and key == tmp_path / ".hive" / "private" / "id_ed25519"


def test_broken_state_json_is_a_clear_error(tmp_path: Path) -> None:
    make_site(tmp_path, "plugin: hive_inventory\nname: t\nstages:\n"
                        "  private: {provider: docker, cidr: 10.77.0.0/24}\n")
    (tmp_path / ".hive" / "private").mkdir(parents=True)
    (tmp_path / ".hive" / "private" / "state.json").write_text("{not json")
    with pytest.raises(StateError, match=r"state\.json: cannot read provider state"):
        HiveInventory(root_dir=str(tmp_path)).load()


def test_plugin_falls_back_to_the_default_site(tmp_path: Path) -> None:
    inv = HiveInventory(root_dir=str(tmp_path), stage="private").load()
    assert list(inv.hosts) == [f"p-hive{i}.hivelab" for i in range(4)]
    assert inv.hosts["p-hive3.hivelab"]["hive_private_ip"] == "10.77.0.7"
    key = (inv.hosts["p-hive0.hivelab"].get_connection_parameters("hive_ssh").extras or {})["key_file"]
    assert key == str(tmp_path / ".hive" / "private" / "id_ed25519")


def test_init_nornir_with_the_hive_inventory_plugin(tmp_path: Path) -> None:
    InventoryPluginRegister.register("HiveInventory", HiveInventory)
    nr = InitNornir(
        runner={"plugin": "serial"},
        inventory={"plugin": "HiveInventory", "options": {"root_dir": str(tmp_path), "site_file": str(PDNS),
                                                          "stage": "production"}},
        logging={"enabled": False},
    )
    assert sorted(nr.filter(filter_func=lambda h: "repository" in h.groups).inventory.hosts) == ["hive3.pdns"]


# --- export and rows -------------------------------------------------------------------------------


def test_export_loads_in_plain_simple_inventory(pdns: Site, tmp_path: Path) -> None:
    inv = build_inventory(pdns, "staging", context_dir=tmp_path / "ctx")
    files = export_simple_inventory(inv, tmp_path / "out")
    assert {p.name for p in files.values()} == {"hosts.yaml", "groups.yaml", "defaults.yaml"}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files.values())
    nr = InitNornir(
        runner={"plugin": "serial"},
        inventory={"plugin": "SimpleInventory", "options": {
            "host_file": str(files["hosts"]), "group_file": str(files["groups"]),
            "defaults_file": str(files["defaults"])}},
        logging={"enabled": False},
    )
    plain = nr.inventory
    assert list(plain.hosts) == list(inv.hosts)
    for name, host in inv.hosts.items():
        other = plain.hosts[name]
        assert (other.hostname, other.port, other.username, other.platform) == (
            host.hostname, host.port, host.username, host.platform)
        assert [g.name for g in other.groups] == [g.name for g in host.groups]
        assert dict(other.items()) == dict(host.items())
        for conn in ("hive_ssh", "netmiko"):
            mine, theirs = host.get_connection_parameters(conn), other.get_connection_parameters(conn)
            assert (theirs.extras, theirs.platform) == (mine.extras, mine.platform)
    assert plain.defaults.data["hive_name"] == "pdns"


def test_inventory_rows(pdns: Site) -> None:
    rows = inventory_rows(build_inventory(pdns, "staging"))
    assert rows[2] == {"name": "s-hive2.pdns", "groups": "hosts,servers,hives,repository,staging",
                       "address": "192.168.0.100:22", "user": "admin", "private_ip": "192.168.0.100"}
    assert rows[0]["groups"] == "hosts,servers,hives,first_hive,staging"


def test_export_writes_no_yaml_anchors(tmp_path: Path) -> None:
    """A list or mapping shared by every host (group_vars, stage keys) is written in full for each host."""
    site = make_site(tmp_path, "plugin: hive_inventory\nname: t\nstages:\n"
                               "  private: {provider: docker, cidr: 10.0.0.0/24}\n",
                     {"group_vars/servers.yml": "hive_ntp_servers: [10.0.0.1, 10.0.0.2]\n"
                                                "hive_users: {alice: {uid: 2001}}\n"})
    files = export_simple_inventory(build_inventory(site, "private"), tmp_path / "out")
    for path in files.values():
        text = path.read_text()
        assert "&id" not in text and "*id" not in text, path.name
    hosts = yaml.safe_load(files["hosts"].read_text())
    assert all(h["data"]["hive_ntp_servers"] == ["10.0.0.1", "10.0.0.2"] for h in hosts.values())
    assert len(hosts) == 4
