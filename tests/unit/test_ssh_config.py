"""ssh_config for bastions: looked up by inventory name first, then by address; the stage file is found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nornir.core.inventory import ConnectionOptions, Defaults, Host

from hive_nornir.inventory.connection import connection_extras
from hive_nornir.transport.params import build_params
from hive_nornir.transport.plugin import host_extras

CONFIG = """\
Host *
  ServerAliveInterval 30
Host p-hive1.site
  HostName 10.91.0.11
  ProxyJump 127.0.0.1:2201
Host p-hive2.*
  HostName 10.91.0.12
  Port 2222
  User ops
  IdentityFile ~/bastion_key
  ProxyCommand ssh -W %h:%p jump
Host 127.0.0.5
  User byaddress
"""


def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "ssh_config"
    path.write_text(CONFIG)
    return path


def test_inventory_name_entry_wins_over_the_recorded_address(tmp_path: Path) -> None:
    extras = {"ssh_config": str(cfg(tmp_path)), "host_name": "p-hive1.site", "key_file": "/stage/key"}
    p = build_params("127.0.0.1", "admin", None, 2202, extras)
    # the entry changes HostName and sets no Port: ssh's default 22, not the docker port of the old address
    assert (p.hostname, p.port, p.username) == ("10.91.0.11", 22, "admin")
    assert [(h.hostname, h.port, h.username) for h in p.proxy_jump] == [("127.0.0.1", 2201, "admin")]
    assert p.key_files == ("/stage/key",) and p.proxy_jump[0].key_files == ("/stage/key",)


def test_pattern_entry_gives_port_user_keys_and_proxycommand(tmp_path: Path) -> None:
    extras = {"ssh_config": str(cfg(tmp_path)), "host_name": "p-hive2.site", "key_file": "/stage/key"}
    p = build_params("127.0.0.1", "admin", None, 2203, extras)
    assert (p.hostname, p.port, p.username) == ("10.91.0.12", 2222, "ops")
    assert p.key_files == (str(Path("~/bastion_key").expanduser()), "/stage/key")
    assert p.proxy_command == "ssh -W 10.91.0.12:2222 jump" and p.proxy_jump == ()


def test_no_named_entry_falls_back_to_the_address_and_explicit_values_win(tmp_path: Path) -> None:
    extras = {"ssh_config": str(cfg(tmp_path)), "host_name": "p-hive3.site"}  # only `Host *` matches the name
    p = build_params("127.0.0.5", None, None, 2204, extras)
    assert (p.hostname, p.port, p.username) == ("127.0.0.5", 2204, "byaddress")
    assert build_params("127.0.0.5", "admin", None, 2204, extras).username == "admin"


def test_stage_ssh_config_goes_into_the_extras_when_present(tmp_path: Path) -> None:
    assert "ssh_config" not in connection_extras(tmp_path, None)["hive_ssh"]
    cfg(tmp_path)
    assert connection_extras(tmp_path, None)["hive_ssh"]["ssh_config"] == str((tmp_path / "ssh_config").absolute())


def test_host_extras_name_and_site_variable(tmp_path: Path) -> None:
    context = tmp_path / ".hive" / "private"
    options = {"hive_ssh": ConnectionOptions(extras=connection_extras(context, None)["hive_ssh"])}
    host = Host("p-hive0.site", hostname="127.0.0.1", port=2201, defaults=Defaults(connection_options=options))
    extras = host_extras(host)
    assert extras["host_name"] == "p-hive0.site" and "ssh_config" not in extras
    host.data["hive_ssh_config"] = "inventory/ssh_config"  # relative: to the project root
    assert host_extras(host)["ssh_config"] == str(tmp_path.absolute() / "inventory" / "ssh_config")
    host.data["hive_ssh_config"] = "/etc/hive/ssh_config"
    assert host_extras(host)["ssh_config"] == "/etc/hive/ssh_config"


def test_ansible_ssh_private_key_file_is_offered_first_from_the_project_root(tmp_path: Path) -> None:
    """Issue 11 item 13: a host or group `ansible_ssh_private_key_file` is used as Ansible would, stage key after."""
    from nornir.core.inventory import Group, ParentGroups

    context = tmp_path / ".hive" / "private"
    stage_key = str(context.absolute() / "id_ed25519")
    options = {"hive_ssh": ConnectionOptions(extras=connection_extras(context, None)["hive_ssh"])}
    defaults = Defaults(connection_options=options)
    ops = Group("ops", data={"ansible_ssh_private_key_file": "~/.ssh/ops_key"}, defaults=defaults)
    host = Host("p-hive0.site", hostname="127.0.0.1", port=2201, groups=ParentGroups([ops]), defaults=defaults)
    extras = host_extras(host)  # from the group, ~ expanded
    assert extras["identity_files"] == [str(Path("~/.ssh/ops_key").expanduser())]
    host.data["ansible_ssh_private_key_file"] = "keys/p-hive0"  # the host's own wins; relative: the project root
    extras = host_extras(host)
    assert extras["identity_files"] == [str(tmp_path.absolute() / "keys" / "p-hive0")]
    p = build_params("127.0.0.1", "admin", None, 2201, extras)
    assert p.key_files == (str(tmp_path.absolute() / "keys" / "p-hive0"), stage_key) and not p.look_for_keys
    del host.data["ansible_ssh_private_key_file"]
    host.groups = ParentGroups([])
    host.data["ansible_private_key_file"] = "/etc/hive/key"  # Ansible's alias
    assert build_params("127.0.0.1", "admin", None, 2201, host_extras(host)).key_files == ("/etc/hive/key", stage_key)
    host.data.clear()
    assert build_params("127.0.0.1", "admin", None, 2201, host_extras(host)).key_files == (stage_key,)


def test_the_user_key_comes_before_ssh_config_identities_and_the_stage_key(tmp_path: Path) -> None:
    extras = {"ssh_config": str(cfg(tmp_path)), "host_name": "p-hive2.site", "key_file": "/stage/key",
              "identity_files": ["/mine/key"]}
    p = build_params("127.0.0.1", "admin", None, 2203, extras)
    assert p.key_files == ("/mine/key", str(Path("~/bastion_key").expanduser()), "/stage/key")


def _netmiko_extras(host: Host) -> dict[str, Any]:
    return host.get_connection_parameters("netmiko").extras or {}


def test_netmiko_offers_the_hosts_ansible_ssh_private_key_file_too(tmp_path: Path) -> None:
    """The key a host or group names is netmiko's key_file as well; the other netmiko settings stay."""
    from hive_nornir.inventory import build_inventory
    from hive_nornir.site import load_site

    inv_dir = tmp_path / "inventory"
    (inv_dir / "host_vars").mkdir(parents=True)
    (inv_dir / "group_vars").mkdir()
    (inv_dir / "hive.yml").write_text("plugin: hive_inventory\nname: nk\nstages:\n  private:\n    provider: prepared\n"
                                      "    separate_repository: False\n    number_of_hosts: 2\n"
                                      "    cidr: 10.9.0.0/24\n")
    (inv_dir / "group_vars" / "hives.yml").write_text("ansible_ssh_private_key_file: /etc/hive/ops_key\n")
    (inv_dir / "host_vars" / "p-hive1.nk.yml").write_text("ansible_ssh_private_key_file: keys/p-hive1\n")
    inv = build_inventory(load_site(inv_dir / "hive.yml"), "private")
    stage_key = str((tmp_path / ".hive" / "private").absolute() / "id_ed25519")
    keys = {name: _netmiko_extras(host)["key_file"] for name, host in inv.hosts.items()}
    assert keys == {"p-hive0.nk": "/etc/hive/ops_key", "p-hive1.nk": str(tmp_path.absolute() / "keys" / "p-hive1")}
    extras = _netmiko_extras(inv.hosts["p-hive1.nk"])
    assert extras["use_keys"] and extras["ssh_strict"] and extras["alt_key_file"].endswith("known_hosts")
    (inv_dir / "group_vars" / "hives.yml").write_text("hive_timezone: UTC\n")
    (inv_dir / "host_vars" / "p-hive1.nk.yml").unlink()
    inv = build_inventory(load_site(inv_dir / "hive.yml"), "private")
    assert {_netmiko_extras(h)["key_file"] for h in inv.hosts.values()} == {stage_key}
