"""The default site's NTP server is the stage's repository by name, so a user who changes the cidr keeps it."""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path

from hive_nornir.inventory import build_inventory
from hive_nornir.site import load_site
from hive_nornir.site.loader import default_site_dir


def copy_default_site(root: Path, cidr: str | None = None) -> Path:
    """The embedded site copied to root/inventory, with the private stage's cidr changed as a user would."""
    inv = root / "inventory"
    shutil.copytree(default_site_dir(), inv)
    path = inv / "hive.yml"
    if cidr:
        text = path.read_text()
        assert "cidr: 10.77.0.0/24" in text
        path.write_text(text.replace("cidr: 10.77.0.0/24", f"cidr: {cidr}", 1))
    return path


def ntp_targets(path: Path, stage: str) -> dict[str, list[str]]:
    """Per host, the private address each hive_ntp_servers entry means (an inventory name resolves to its IP,
    as the /etc/hosts that the hostsfile step writes does; an address stands for itself)."""
    inv = build_inventory(load_site(path), stage, None)
    ips = {name: str(host["hive_private_ip"]) for name, host in inv.hosts.items()}
    return {name: [ips.get(s, s) for s in host.get("hive_ntp_servers", None) or []]
            for name, host in inv.hosts.items()}


def repository_ip(path: Path, stage: str) -> str:
    inv = build_inventory(load_site(path), stage, None)
    (repo,) = [h for h in inv.hosts.values() if "repository" in [g.name for g in h.groups]]
    return str(repo["hive_private_ip"])


def test_another_cidr_still_gets_the_repository_as_ntp_server(tmp_path: Path) -> None:
    path = copy_default_site(tmp_path, "10.123.0.0/24")
    repo = repository_ip(path, "private")
    assert ipaddress.ip_address(repo) in ipaddress.ip_network("10.123.0.0/24")
    targets = ntp_targets(path, "private")
    assert targets and all(servers == [repo] for servers in targets.values()), targets


def test_default_cidr_gets_the_repository_too(tmp_path: Path) -> None:
    path = copy_default_site(tmp_path)
    assert all(servers == [repository_ip(path, "private")] for servers in ntp_targets(path, "private").values())


def test_other_stages_get_no_lab_address(tmp_path: Path) -> None:
    """staging (prepared machines) and production (aws) must not be pointed at the lab's network."""
    path = copy_default_site(tmp_path)
    for stage in ("staging", "production"):
        assert all(servers == [] for servers in ntp_targets(path, stage).values()), stage
