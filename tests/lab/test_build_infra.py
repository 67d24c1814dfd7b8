"""build-infra with the docker provider: real systemd hosts, reached only via 127.0.0.1 ports."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from conftest import prepared_copy

Lab = Any  # tests/lab/conftest.py:Lab (conftest modules are not imported by name)

pytestmark = pytest.mark.lab


def run_ssh(lab: Lab, host: str, cmd: str, user: str | None = None) -> tuple[int, str]:
    """One command over paramiko with the stage key and the recorded host key."""
    c = lab.ssh(host, user)
    try:
        _, out, err = c.exec_command(cmd, timeout=30)
        rc = out.channel.recv_exit_status()
        return rc, out.read().decode() + err.read().decode()
    finally:
        c.close()


def test_four_hosts_reachable_as_admin_with_sudo(lab: Lab) -> None:
    """Every host answers on its 127.0.0.1 port; admin logs in with the stage key and has NOPASSWD sudo."""
    assert sorted(lab.hosts) == ["p-hive0.labtest", "p-hive1.labtest", "p-hive2.labtest", "p-hive3.labtest"]
    for host in lab.hosts:
        entry = lab.state["hosts"][host]
        assert entry["address"] == "127.0.0.1" and entry["user"] == "admin"
        rc, out = run_ssh(lab, host, "sudo -n id -u && hostname && id -un")
        assert rc == 0, out
        uid, hostname, who = out.split()
        assert (uid, hostname, who) == ("0", host.split(".")[0], "admin")
        rc, out = run_ssh(lab, host, "id -u", user="root")
        assert (rc, out.strip()) == (0, "0")


def test_private_ips_and_network(lab: Lab) -> None:
    """Containers sit on hive-labtest-private at the inventory's private IPs (.4 onwards)."""
    assert lab.state["network"] == {"name": "hive-labtest-private", "cidr": "10.78.0.0/24"}
    for i, host in enumerate(sorted(lab.hosts)):
        assert lab.state["hosts"][host]["private_ip"] == f"10.78.0.{4 + i}"
        rc, out = lab.docker_exec(host, "ip -4 -o addr show eth0")
        assert rc == 0 and f" 10.78.0.{4 + i}/24 " in out, out


def test_state_file_matches_contract(lab: Lab) -> None:
    """state.json on disk has the shape of docs/architecture.md, and the key is private."""
    on_disk = json.loads((lab.context_dir / "state.json").read_text())
    assert on_disk == lab.state
    assert set(on_disk) == {"provider", "stage", "site_name", "stage_id", "ssh_key", "network", "hosts"}
    assert (on_disk["provider"], on_disk["stage"], on_disk["site_name"]) == ("docker", "private", "labtest")
    assert len(on_disk["stage_id"]) == 32
    known = lab.known_hosts.read_text().splitlines()
    for h in on_disk["hosts"].values():
        assert set(h) == {"address", "port", "user", "private_ip", "container", "host_key"}
        assert f"[127.0.0.1]:{h['port']} {h['host_key']}" in known
        labels = json.loads(subprocess.run(["docker", "inspect", "-f", "{{json .Config.Labels}}", h["container"]],
                                           capture_output=True, text=True, check=True).stdout)
        assert labels["hive_nornir.stage_id"] == on_disk["stage_id"]
        assert labels["hive_nornir.owner"] == str(lab.context_dir.resolve())
    assert (lab.key_file.stat().st_mode & 0o777) == 0o600
    assert (lab.context_dir.stat().st_mode & 0o777) == 0o700


def test_rerun_reports_no_change(lab: Lab) -> None:
    """A second build with everything up changes nothing and says so."""
    before = (lab.context_dir / "state.json").read_text(), lab.known_hosts.read_text()
    res = lab.rebuild()
    assert res["changed"] is False, res["hosts"]
    assert all(acts == [] for acts in res["hosts"].values()), res["hosts"]
    assert ((lab.context_dir / "state.json").read_text(), lab.known_hosts.read_text()) == before


def test_known_hosts_one_entry_per_host(lab: Lab) -> None:
    """known_hosts has exactly one `[127.0.0.1]:PORT` entry per host, matching state.json."""
    lines = [ln for ln in lab.known_hosts.read_text().splitlines() if ln.strip()]
    patterns = [ln.split()[0] for ln in lines]
    assert sorted(patterns) == sorted(f"[127.0.0.1]:{lab.ssh_port(h)}" for h in lab.hosts)


# capability bits (linux/capability.h): gone from every lab host, and the ones the lab needs kept
DROPPED_CAPS = {"DAC_READ_SEARCH": 2, "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_BOOT": 22, "SYS_RESOURCE": 24,
                "SYS_TIME": 25, "AUDIT_CONTROL": 30, "SYSLOG": 34, "WAKE_ALARM": 35}
NEEDED_CAPS = {"NET_ADMIN": 12, "NET_RAW": 13, "SYS_ADMIN": 21, "MKNOD": 27, "SYS_CHROOT": 18, "SETFCAP": 31}
FINIT_MODULE = {"x86_64": 313, "aarch64": 273}
MODULE_PROBE = """
import ctypes, os, platform, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open("/etc/hostname", os.O_RDONLY)
rc = libc.syscall({nr}[platform.machine()], fd, b"", 0)
print(rc, ctypes.get_errno())
"""


def test_lab_hosts_cannot_set_the_clock_or_load_modules(lab: Lab) -> None:
    """A lab host once moved this machine's clock 9 hours (CAP_SYS_TIME): the capabilities acting on the shared
    kernel are gone from the bounding set, `date -s` is refused and the controller's clock stays put."""
    import errno
    import os
    import time

    for host in lab.hosts:
        _, out = lab.docker_exec(host, "awk '/^CapBnd/ {print $2}' /proc/1/status")
        bounding = int(out.strip(), 16)
        assert [c for c, bit in DROPPED_CAPS.items() if bounding >> bit & 1] == [], (host, out)
        assert [c for c, bit in NEEDED_CAPS.items() if not bounding >> bit & 1] == [], (host, out)
    host = lab.hosts[0]
    wall, mono = time.time(), time.monotonic()
    rc, out = run_ssh(lab, host, f"sudo -n date -s @{int(wall)}")  # the current time: harmless had it worked
    assert rc != 0 and "cannot set date: Operation not permitted" in out, out
    rc, out = run_ssh(lab, host, "sudo -n date -s '2001-02-03 04:05:06'")  # tried only once SYS_TIME is proven gone
    assert rc != 0 and "Operation not permitted" in out, out
    assert abs(time.time() - (wall + time.monotonic() - mono)) < 60  # the controller's clock did not move
    rc, out = run_ssh(lab, host, shlex.join(["sudo", "-n", "python3", "-c", MODULE_PROBE.format(nr=FINIT_MODULE)]))
    ret, err = out.split()
    # EPERM: refused for want of CAP_SYS_MODULE; ENOSYS only on a kernel built without modules (like this one)
    expected = errno.EPERM if os.path.exists("/proc/modules") else errno.ENOSYS
    assert (int(ret), int(err)) == (-1, expected), out
    # what setup-hosts needs still works: systemd, iptables, sysctl writes
    for cmd in ("systemctl is-system-running", "sudo -n iptables -w -S INPUT",
                "sudo -n sysctl -w net.ipv4.ip_forward=1"):
        rc, out = run_ssh(lab, host, cmd)
        assert rc == 0, (cmd, out)


def test_only_loopback_ports_published(lab: Lab) -> None:
    """The controller reaches hosts only via 127.0.0.1: no other binding exists."""
    for host in lab.hosts:
        out = subprocess.run(["docker", "port", lab.container(host)], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()
        assert out == [f"22/tcp -> 127.0.0.1:{lab.ssh_port(host)}"], out


def test_etc_hosts_is_a_plain_file(lab: Lab) -> None:
    """The image turns Docker's bind-mounted /etc/hosts into a plain file, so rename() onto it works."""
    host = lab.hosts[0]
    _, out = lab.docker_exec(host, "grep -c ' /etc/hosts ' /proc/self/mountinfo; "
                                    "cp /etc/hosts /etc/.h && mv -f /etc/.h /etc/hosts && echo renamed")
    assert out.split() == ["0", "renamed"], out
    _, out = lab.docker_exec(host, "systemctl is-system-running")
    assert out.strip() == "running", out


def test_stopped_host_is_started_again(lab: Lab) -> None:
    """build starts a stopped container and records its (new) port and host key."""
    host = lab.hosts[-1]
    subprocess.run(["docker", "stop", "-t", "10", lab.container(host)], check=True, capture_output=True)
    res = lab.rebuild()
    assert res["changed"] is True and res["hosts"][host] == ["started"], res["hosts"]
    rc, out = run_ssh(lab, host, "sudo -n id -u")
    assert (rc, out.strip()) == (0, "0")
    test_known_hosts_one_entry_per_host(lab)
    assert lab.rebuild()["changed"] is False


def test_destroy_removes_everything(make_lab: Callable[..., Any]) -> None:
    """destroy removes containers, volumes, the network and the hosts in state.json and known_hosts."""
    small = make_lab("labgone", "10.79.0.0/24", 1, separate=False)
    (name,) = small.hosts
    assert small.state["hosts"][name]["private_ip"] == "10.79.0.4"
    cid = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", small.container(name)], capture_output=True,
                         text=True, check=True).stdout.strip()
    vols = subprocess.run(["docker", "inspect", "-f", "{{range .Mounts}}{{.Name}} {{end}}", cid],
                          capture_output=True, text=True, check=True).stdout.split()
    small.provider.destroy(small.site, small.stage, small.context_dir)
    ps = subprocess.run(["docker", "ps", "-aq", "--filter", "label=hive_nornir.site=labgone"],
                        capture_output=True, text=True, check=True).stdout
    assert ps.strip() == ""
    nets = subprocess.run(["docker", "network", "ls", "-q", "--filter", "name=^hive-labgone-private$"],
                          capture_output=True, text=True, check=True).stdout
    assert nets.strip() == ""
    for v in vols:
        r = subprocess.run(["docker", "volume", "inspect", v], capture_output=True, text=True)
        assert r.returncode != 0, f"volume {v} left behind"
    assert json.loads((small.context_dir / "state.json").read_text())["hosts"] == {}
    assert small.known_hosts.read_text().strip() == ""
    small.provider.destroy(small.site, small.stage, small.context_dir)  # idempotent


def test_unknown_provider_is_a_clear_error() -> None:
    """aws/vagrant are hive-builder providers we do not implement yet: say so plainly."""
    from hive_nornir.providers import ProviderNotSupported, get_provider

    with pytest.raises(ProviderNotSupported, match="provider 'aws' is not supported yet by build-infra"):
        get_provider("aws")


def test_prepared_provider_records_existing_hosts(lab: Lab, tmp_path: Any) -> None:
    """Provider `prepared` on hosts that already exist (the lab's, via hive_ssh_host/hive_sshd_port)."""

    from hive_nornir.providers import ProviderError, get_provider

    site, ctx = prepared_copy(lab, tmp_path, {
        host: f"hive_ssh_host: 127.0.0.1\nhive_sshd_port: {lab.ssh_port(host)}\n" for host in lab.hosts})
    prepared = get_provider("prepared")
    res = prepared.build(site, "private", ctx)
    assert res["changed"] is True
    assert all(acts == ["host_key_recorded"] for acts in res["hosts"].values()), res["hosts"]
    assert sorted((ctx / "known_hosts").read_text().splitlines()) == sorted(
        lab.known_hosts.read_text().splitlines())
    for host in lab.hosts:
        assert res["state"]["hosts"][host] == {"address": "127.0.0.1", "port": lab.ssh_port(host),
                                               "user": "admin",
                                               "private_ip": lab.state["hosts"][host]["private_ip"]}
    again = prepared.build(site, "private", ctx)
    assert again["changed"] is False and all(a == [] for a in again["hosts"].values()), again["hosts"]
    # a different host key for the same endpoint is refused, not silently replaced
    first = lab.hosts[0]
    pattern = f"[127.0.0.1]:{lab.ssh_port(first)}"
    lines = (ctx / "known_hosts").read_text().splitlines()
    other = next(ln for ln in lines if not ln.startswith(pattern + " ")).split(None, 1)[1]
    (ctx / "known_hosts").write_text("\n".join(
        f"{pattern} {other}" if ln.startswith(pattern + " ") else ln for ln in lines) + "\n")
    tampered = (ctx / "known_hosts").read_text()
    with pytest.raises(ProviderError, match=r"host key changed for \[127\.0\.0\.1\]:\d+: .* --rekey p-hive0"):
        prepared.build(site, "private", ctx)
    assert (ctx / "known_hosts").read_text() == tampered  # refused, nothing rewritten
    # re-keying is the named action: only the host named, and the key it really has
    res = prepared.build(site, "private", ctx, rekey=[first.split(".")[0]])
    assert res["hosts"][first] == ["rekeyed"] and all(a == [] for h, a in res["hosts"].items() if h != first)
    assert sorted((ctx / "known_hosts").read_text().splitlines()) == sorted(lab.known_hosts.read_text().splitlines())
