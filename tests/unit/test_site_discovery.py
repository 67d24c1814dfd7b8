"""Which site file a project root means: hive-builder's free file name, and no silent switch to the lab site."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hive_nornir.cli import main
from hive_nornir.inventory import HiveInventory
from hive_nornir.report.run_report import EXIT_BAD_INPUT, EXIT_OK
from hive_nornir.site import SiteError, find_site, load_site
from hive_nornir.site.loader import default_site_dir

SITE = "plugin: hive_inventory\nname: t\nstages:\n  private: {provider: docker, cidr: 10.0.0.0/24}\n"
SERVICES = "plugin: hive_services\nservices: {}\n"


def layout(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def site_error(root: Path) -> str:
    with pytest.raises(SiteError) as info:
        find_site(root)
    return str(info.value)


def test_root_without_inventory_dir_uses_the_embedded_site(tmp_path: Path) -> None:
    assert find_site(tmp_path) == default_site_dir() / "hive.yml"


def test_any_file_name_with_plugin_hive_inventory(tmp_path: Path) -> None:
    layout(tmp_path, {"inventory/mysite.yaml": "# my site\n" + SITE, "inventory/services.yml": SERVICES,
                      "inventory/group_vars/all.yml": "plugin: hive_inventory\n"})
    found = find_site(tmp_path)
    assert found == tmp_path / "inventory" / "mysite.yaml"
    assert load_site(found).name == "t"


def test_quoted_plugin_value_with_comment(tmp_path: Path) -> None:
    layout(tmp_path, {"inventory/site.yml": SITE.replace("hive_inventory", "'hive_inventory'  # the site")})
    assert find_site(tmp_path) == tmp_path / "inventory" / "site.yml"


def test_inventory_dir_without_a_site_file_is_an_error(tmp_path: Path) -> None:
    layout(tmp_path, {"inventory/hive.yml": SITE.replace("hive_inventory", "hive_inventry"),
                      "inventory/services.yml": SERVICES, "inventory/notes.yml": "a: 1\n"})
    inv = tmp_path / "inventory"
    assert site_error(tmp_path) == (
        f"{inv}: no site file with 'plugin: hive_inventory' (found: hive.yml (plugin: hive_inventry), "
        f"notes.yml (plugin: none), services.yml (plugin: hive_services)); expected exactly one *.yml or "
        f"*.yaml file in {inv} with 'plugin: hive_inventory'")


def test_inventory_dir_with_only_vars_is_an_error(tmp_path: Path) -> None:
    layout(tmp_path, {"inventory/group_vars/all.yml": "hive_timezone: UTC\n"})
    assert "no site file with 'plugin: hive_inventory' (found: no YAML files)" in site_error(tmp_path)


def test_two_site_files_are_an_error(tmp_path: Path) -> None:
    layout(tmp_path, {"inventory/a.yml": SITE, "inventory/b.yaml": SITE})
    assert f"{tmp_path / 'inventory'}: 2 files have 'plugin: hive_inventory': a.yml, b.yaml;" in site_error(tmp_path)


def test_missing_root_is_an_error(tmp_path: Path) -> None:
    assert site_error(tmp_path / "nope") == (
        f"{tmp_path / 'nope'}: project root does not exist; expected an existing directory (the one holding "
        f"inventory/)")
    (tmp_path / "file").write_text("")
    assert "project root is not a directory" in site_error(tmp_path / "file")


def test_inventory_plugin_does_not_fall_back_when_inventory_dir_exists(tmp_path: Path) -> None:
    layout(tmp_path, {"inventory/group_vars/all.yml": "hive_timezone: UTC\n"})
    with pytest.raises(SiteError, match="no site file"):
        HiveInventory(root_dir=str(tmp_path)).load()


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-r", str(tmp_path / "nope"), "inventory"]) == EXIT_BAD_INPUT
    assert "project root does not exist" in capsys.readouterr().err
    layout(tmp_path, {"inventory/hive.yaml.orig": SITE, "inventory/group_vars/all.yml": "a: 1\n"})
    assert main(["-r", str(tmp_path), "inventory"]) == EXIT_BAD_INPUT
    assert "no site file" in capsys.readouterr().err
    layout(tmp_path, {"inventory/site.yml": SITE})
    assert main(["-r", str(tmp_path), "inventory", "--json"]) == EXIT_OK
    assert "p-hive0.t" in json.loads(capsys.readouterr().out)["_meta"]["hostvars"]
