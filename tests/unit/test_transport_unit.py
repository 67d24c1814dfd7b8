"""hive_ssh pieces that need no sshd: settings resolution, known_hosts matching, command wrapping."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from pathlib import Path

import paramiko
import pytest

from hive_nornir.transport import CommandResult, build_params
from hive_nornir.transport.errors import ConnectionRefused, TransportError
from hive_nornir.transport.known_hosts import KnownHosts, fingerprint, host_entry
from hive_nornir.transport.session import describe_command, wire


def test_wire_keeps_script_and_data_out_of_argv_sudo_only_for_non_root() -> None:
    """sshd's argv (what `ps` shows on the host) never holds the script or the data: both go on stdin."""
    script = "echo 's3cret'"
    assert wire(script, sudo=True, is_root=True, env=None, data=None) == ("sh -s", b"{\necho 's3cret'\n} </dev/null\n")
    assert wire("id -u", sudo=True, is_root=False, env=None, data=None)[0] == "sudo -n -H -- sh -s"
    assert wire("id -u", sudo=False, is_root=False, env=None, data=None)[0] == "sh -s"
    assert wire("x", sudo=True, is_root=False, env={"A": "1 2"}, data=None)[0] == "sudo -n -H -- env A='1 2' sh -s"
    argv, payload = wire(script, sudo=True, is_root=False, env=None, data=b"tok")
    assert argv == "sudo -n -H -- sh -c 'eval \"$(head -c 13)\"'" and payload == script.encode() + b"tok"
    assert "s3cret" not in argv
    with pytest.raises(ValueError):
        wire("true", sudo=True, is_root=True, env={"BAD-NAME": "1"}, data=None)


def test_describe_command_names_the_meaningful_line() -> None:
    assert describe_command("set -e\ntrap 'rm -f /x' EXIT\nsystemctl restart zabbix-agent\n") == (
        "systemctl restart zabbix-agent")
    assert describe_command("set -eu\necho '@@hive-0a1b2c 0'\napt-get install -y nginx\nrm x") == (
        "apt-get install -y nginx ...")
    assert describe_command("set -e") == "set -e"
    assert len(describe_command("x" * 500)) == 120


def test_command_result_ok_and_errors_name_host_port() -> None:
    assert CommandResult("true", 0, "", "", 0.1).ok and not CommandResult("false", 1, "", "", 0.1).ok
    e = ConnectionRefused("10.0.0.1", 2201, "sshd not listening")
    assert isinstance(e, TransportError) and str(e) == "10.0.0.1:2201: sshd not listening"


def test_build_params_explicit_wins_over_ssh_config(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    cfg.write_text("Host web\n  HostName 10.1.1.1\n  Port 2222\n  User deploy\n  IdentityFile ~/k\n"
                   "  ProxyJump ops@bastion:2200,gw\nHost gw\n  HostName 10.9.9.9\n  User jump\n")
    p = build_params("web", None, None, None, {"ssh_config": str(cfg)})
    assert (p.hostname, p.port, p.username) == ("10.1.1.1", 2222, "deploy")
    assert p.key_files == (str(Path("~/k").expanduser()),) and not p.look_for_keys
    assert [(h.hostname, h.port, h.username) for h in p.proxy_jump] == [
        ("bastion", 2200, "ops"), ("10.9.9.9", 22, "jump")]
    p = build_params("web", "admin", None, 2201, {"ssh_config": str(cfg), "key_file": "/k2",
                                                   "connect_timeout": 3, "connect_retries": 0})
    assert (p.port, p.username, p.key_files, p.connect_timeout, p.connect_retries) == (
        2201, "admin", ("/k2",), 3.0, 0)
    assert "s3cret" not in repr(build_params("x", "u", "s3cret", 22, {}))


def test_known_hosts_matching_hashed_globs_negation(tmp_path: Path) -> None:
    key = paramiko.Ed25519Key.from_private_key_file(_make_key(tmp_path))
    b64 = key.get_base64()
    salt = os.urandom(20)
    hashed = "|1|{}|{}".format(base64.b64encode(salt).decode(), base64.b64encode(
        hmac.new(salt, b"[10.0.0.7]:2201", hashlib.sha1).digest()).decode())
    kh = tmp_path / "known_hosts"
    kh.write_text(f"# c\n{hashed} ssh-ed25519 {b64}\n10.0.0.*,!10.0.0.9 ssh-ed25519 {b64}\n"
                  f"@revoked * ssh-ed25519 {b64}\n[127.0.0.1]:2202 ssh-rsa AAAA\n")
    k = KnownHosts(str(kh))
    assert [x.lineno for x in k.lookup("10.0.0.7", 2201)] == [2]
    assert [x.lineno for x in k.lookup("10.0.0.8", 22)] == [3]
    assert k.lookup("10.0.0.9", 22) == []
    assert k.lookup("127.0.0.1", 2202)[0].keytype == "ssh-rsa"
    assert k.preferred_key_types("127.0.0.1", 2202)[0] == "rsa-sha2-512"
    assert host_entry("h", 22) == "h" and host_entry("h", 2201) == "[h]:2201"
    assert fingerprint(key) == k.lookup("10.0.0.8", 22)[0].fingerprint
    assert fingerprint(key).startswith("SHA256:")


def test_known_hosts_add_is_thread_safe(tmp_path: Path) -> None:
    key = paramiko.Ed25519Key.from_private_key_file(_make_key(tmp_path))
    k = KnownHosts(str(tmp_path / "d" / "known_hosts"))
    threads = [threading.Thread(target=k.add, args=("127.0.0.1", 3000 + i % 10, key)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "d" / "known_hosts").read_text().splitlines()
    assert sorted(ln.split()[0] for ln in lines) == sorted(f"[127.0.0.1]:{3000 + i}" for i in range(10))


def _make_key(tmp_path: Path) -> str:
    path = tmp_path / "k"
    if not path.exists():
        import subprocess

        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return str(path)
