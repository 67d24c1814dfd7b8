"""hive_ssh on a real lab host (systemd container): timeouts, a rebuilt host key, a stopped sshd."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from hive_nornir.transport import (
    CommandTimeout,
    ConnectionRefused,
    ConnectTimeout,
    HostKeyChanged,
    SSHSession,
    build_params,
    connect,
)

pytestmark = pytest.mark.lab


def _target(lab: Any) -> str:
    """The last stage host (the repository when separate), so hive hosts used elsewhere stay untouched."""
    return str(list(lab.state["hosts"])[-1])


def _open(lab: Any, host: str, **extras: Any) -> SSHSession:
    e = lab.state["hosts"][host]
    ex = {"key_file": str(Path(lab.context_dir) / "id_ed25519"),
          "known_hosts": str(Path(lab.context_dir) / "known_hosts"), **extras}
    return connect(build_params(e["address"], e["user"], None, int(e["port"]), ex))


def _wait_ssh(lab: Any, host: str, seconds: float = 30) -> SSHSession:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return _open(lab, host, connect_retries=0, connect_timeout=3)
        except (ConnectionRefused, ConnectTimeout):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_lab_commands_timeout_and_sudo(lab: Any) -> None:
    host = _target(lab)
    s = _open(lab, host)
    try:
        assert s.tcp_nodelay and not s.is_root
        assert s.run("id -u").stdout.strip() == "0"
        r = s.run("echo out; echo err >&2; exit 3")
        assert (r.exit_status, r.stdout, r.stderr) == (3, "out\n", "err\n")
        t0 = time.monotonic()
        with pytest.raises(CommandTimeout):
            s.run("sleep 60", timeout=1)
        assert time.monotonic() - t0 < 3
        assert s.run("echo alive").stdout == "alive\n"
        s.upload(b"hello\n", "/etc/hive-transport-test", mode="0640", owner="root", group="adm")
        rc, out = lab.docker_exec(host, "stat -c '%a %U %G' /etc/hive-transport-test && "
                                        "cat /etc/hive-transport-test && rm -f /etc/hive-transport-test")
        assert rc == 0 and out == "640 root adm\nhello\n"
        t0 = time.monotonic()
        for _ in range(20):
            s.run("true")
        print(f"\nlab: 20x sudo -n true {(time.monotonic() - t0) * 1000:.0f} ms")
    finally:
        s.close()


def test_lab_changed_host_key_is_refused(lab: Any) -> None:
    host = _target(lab)
    e = lab.state["hosts"][host]
    entry = f"[{e['address']}]:{e['port']}"
    kh = Path(lab.context_dir) / "known_hosts"
    _open(lab, host).close()  # the key is recorded
    rc, out = lab.docker_exec(host, "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A && systemctl restart ssh")
    assert rc == 0, out
    try:
        with pytest.raises(HostKeyChanged) as ei:
            _wait_ssh(lab, host)
        msg = str(ei.value)
        assert entry in msg and str(kh) in msg and "SHA256:" in msg and "remove line" in msg
    finally:
        # the host really has a new key now: drop its old lines and record the new one for later tests
        lines = [ln for ln in kh.read_text().splitlines(keepends=True) if not ln.startswith(entry + " ")]
        kh.write_text("".join(lines))
        _wait_ssh(lab, host).close()


def test_lab_sshd_stopped_fails_fast(lab: Any) -> None:
    host = _target(lab)
    lab.docker_exec(host, "systemctl stop ssh.socket ssh.service 2>/dev/null; systemctl stop ssh")
    try:
        t0 = time.monotonic()
        with pytest.raises((ConnectionRefused, ConnectTimeout)) as ei:
            _open(lab, host, connect_retries=0, connect_timeout=3)
        took = time.monotonic() - t0
        print(f"\nlab: stopped sshd -> {type(ei.value).__name__} in {took:.2f}s: {ei.value}")
        assert took < 5
    finally:
        lab.docker_exec(host, "systemctl start ssh")
        _wait_ssh(lab, host).close()
