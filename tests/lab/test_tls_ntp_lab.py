"""tls-certificate, docker-client and ntp-client on real hosts: check mode first, then the run, then no changes."""

from __future__ import annotations

import contextlib
import select
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml
from cryptography.hazmat.primitives import serialization

from hive_nornir.api import Hive
from hive_nornir.ca import new_ca
from hive_nornir.engine.runbook import Runbook, Step
from hive_nornir.pki_paths import controller_ca_dir, controller_docker_client_dir
from hive_nornir.report.run_report import EXIT_OK
from hive_nornir.tasks.docker.docker_client import docker_client, stage_docker_client
from hive_nornir.tasks.host.ntp_client import DEBIAN_STOCK, ntp_client
from hive_nornir.tasks.pki.tls_certificate import tls_certificate

pytestmark = pytest.mark.lab

RUNBOOK = Runbook("tls-ntp", steps=(
    Step("tls-certificate", tls_certificate, tags=("tls-certificate", "setup-hosts")),
    Step("ntp-client", ntp_client, tags=("ntp-client", "setup-hosts"), when=lambda h: bool(h.get("hive_ntp_servers"))),
    Step("docker-client", docker_client, tags=("docker-client", "setup-hosts")),
))
ANCHOR = "/usr/local/share/ca-certificates/hive-cacert.crt"
WATCHED = ("/etc/pki /usr/local/share/ca-certificates /etc/ssl/certs /etc/chrony /home/admin "
           "/var/lib/dpkg/status /etc/systemd/system")
SUDO_MARK = ".sudo_as_admin_successful"  # sudo itself writes it at the first login, not a step


def fingerprint(lab, host: str) -> str:  # type: ignore[no-untyped-def]
    """Hashes of every file under the paths these steps touch (and whether they exist), plus chrony's state."""
    _, out = lab.docker_exec(host, f"for p in {WATCHED}; do [ -e $p ] || echo absent $p; done; "
                                   f"find {WATCHED} -xtype f ! -name {SUDO_MARK} 2>/dev/null | sort | xargs -r md5sum; "
                                   f"find /etc/pki /home/admin ! -name {SUDO_MARK} -printf '%p %m %u\\n' 2>/dev/null "
                                   "| sort; "
                                   "systemctl is-active chrony 2>&1")
    return out


def files_text(root: Path) -> str:
    """Every regular file under root, as text, so a key body can be searched for."""
    return "\n".join(p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file())


def pem_body(pem: str) -> str:
    """Base64 body of a PEM block on one line (how it would appear in any copy)."""
    return "".join(ln for ln in pem.splitlines() if ln and not ln.startswith("-----"))


def tunnel(lab, host: str, remote_port: int) -> int:  # type: ignore[no-untyped-def]
    """A local 127.0.0.1 port forwarded over the host's SSH session to its 127.0.0.1:remote_port."""
    transport = lab.ssh(host).get_transport()
    server = socket.create_server(("127.0.0.1", 0))

    def pipe(conn: socket.socket, chan) -> None:  # type: ignore[no-untyped-def]
        with conn, chan, contextlib.suppress(OSError):
            while True:
                ready, _, _ = select.select([conn, chan], [], [], 30)
                if not ready:
                    return
                src, dst = (conn, chan) if conn in ready else (chan, conn)
                data = src.recv(65536)
                if not data:
                    return
                dst.sendall(data)

    def accept() -> None:
        while True:
            conn, peer = server.accept()
            chan = transport.open_channel("direct-tcpip", ("127.0.0.1", remote_port), peer)
            threading.Thread(target=pipe, args=(conn, chan), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return int(server.getsockname()[1])


def test_tls_docker_client_ntp_on_lab(make_lab) -> None:  # type: ignore[no-untyped-def]
    lab = make_lab("htls", "10.82.0.0/24", 2, separate=True)
    hosts = lab.hosts
    ips = {h: lab.state["hosts"][h]["private_ip"] for h in hosts}
    ntp_ip = ips[hosts[1]]  # a lab address: the hosts never reach a public NTP server
    (lab.root / "inventory" / "group_vars").mkdir(exist_ok=True)
    (lab.root / "inventory" / "group_vars" / "all.yml").write_text(f"hive_ntp_servers:\n  - {ntp_ip}\n")
    for h in hosts:  # the lab image must keep chronyd from setting the shared clock (-x) before it ever starts
        rc, out = lab.docker_exec(h, "cat /etc/systemd/system/chrony.service.d/lab-no-clock.conf")
        assert rc == 0 and "chronyd $DAEMON_OPTS -x" in out, out
    hive = Hive(root=lab.root, stage="private")

    # check mode on fresh hosts: reports what would be created, changes nothing (hosts nor controller CA)
    before = {h: fingerprint(lab, h) for h in hosts}
    t0 = time.monotonic()
    report = hive.run(RUNBOOK, check=True)
    print(f"check mode on fresh hosts: {time.monotonic() - t0:.1f} s")
    assert report.exit_code == EXIT_OK, report.text()
    assert {h: fingerprint(lab, h) for h in hosts} == before
    assert not controller_ca_dir(lab.context_dir).exists()
    idents = {(o.host, o.step, c.ident) for o in report.outcomes for c in o.changes}
    for h in hosts:
        assert (h, "tls-certificate", f"file[/etc/pki/tls/certs/{h}_cert.pem]") in idents, idents
        assert (h, "ntp-client", "file[/etc/chrony/sources.d/hive.sources]") in idents, idents
        assert (h, "docker-client", "directory[/home/admin/.docker]") in idents, idents

    # the real run
    t0 = time.monotonic()
    report = hive.run(RUNBOOK)
    print(f"first run: {time.monotonic() - t0:.1f} s")
    assert report.exit_code == EXIT_OK, report.text()
    ca_dir = controller_ca_dir(lab.context_dir)
    assert (ca_dir / "cakey.pem").stat().st_mode & 0o777 == 0o600
    for h in hosts:
        cert, key = f"/etc/pki/tls/certs/{h}_cert.pem", f"/etc/pki/tls/private/{h}_key.pem"
        rc, out = lab.docker_exec(h, f"openssl verify -CAfile {ANCHOR} {cert}")
        assert rc == 0 and out.strip().endswith(": OK"), out
        rc, out = lab.docker_exec(h, f"openssl verify {cert}")  # the system trust store knows the CA
        assert rc == 0, out
        _, out = lab.docker_exec(h, f"openssl x509 -in {cert} -noout -ext subjectAltName,extendedKeyUsage")
        assert f"DNS:{h}, IP Address:{ips[h]}, IP Address:127.0.0.1" in out, out
        assert "TLS Web Client Authentication" in out and "TLS Web Server Authentication" in out, out
        _, out = lab.docker_exec(h, f"stat -c '%a %U' {key} {cert} /home/admin/.docker/key.pem "
                                    "/home/admin/.docker/cert.pem /home/admin/.docker/ca.pem")
        assert out.split("\n")[:5] == ["600 root", "644 root", "600 admin", "644 admin", "644 admin"], out
        rc, out = lab.docker_exec(h, f"cmp {key} /home/admin/.docker/key.pem && cmp {cert} /home/admin/.docker/cert.pem"
                                     f" && cmp {ANCHOR} /home/admin/.docker/ca.pem")
        assert rc == 0, out
        # the private key never reached the controller
        _, key_pem = lab.docker_exec(h, f"cat {key}")
        assert "PRIVATE KEY" in key_pem
        assert pem_body(key_pem)[:200] not in files_text(lab.root)
        # mutual TLS on the host: the engine-side cert serves, the admin's ~/.docker files authenticate
        rc, out = lab.docker_exec(h, (
            f"(timeout 10 openssl s_server -accept 127.0.0.1:8443 -cert {cert} -key {key} -CAfile {ANCHOR} "
            "-Verify 1 -verify_return_error -naccept 1 -quiet >/tmp/s_server.log 2>&1 &) ; sleep 1; "
            "echo hello | timeout 10 openssl s_client -connect 127.0.0.1:8443 -servername " + h + " "
            "-cert /home/admin/.docker/cert.pem -key /home/admin/.docker/key.pem -CAfile /home/admin/.docker/ca.pem "
            f"-verify_hostname {h} -verify_return_error -brief 2>&1 </dev/null"))
        assert "Verification: OK" in out, out
        # chrony: only the lab server, no pool line left active, the daemon running without clock control
        _, out = lab.docker_exec(h, "cat /etc/chrony/sources.d/hive.sources; grep -cE '^[[:space:]]*pool' "
                                    "/etc/chrony/chrony.conf; systemctl is-active chrony; systemctl is-enabled chrony")
        assert out.split("\n")[1:5] == [f"server {ntp_ip} iburst", "0", "active", "enabled"], out
        _, conf = lab.docker_exec(h, "cat /etc/chrony/chrony.conf")
        assert conf == DEBIAN_STOCK  # written before the package: dpkg/ucf kept it, the pool was never configured
        _, out = lab.docker_exec(h, "chronyc -n sources; ps -o args= -C chronyd")
        assert ntp_ip in out and "pool.ntp.org" not in out, out
        assert " -x" in out, out

    # the controller's docker client files: signed by the stage CA, key 0600, usable by the docker SDK
    client = controller_docker_client_dir(lab.context_dir)
    assert (client / "key.pem").stat().st_mode & 0o777 == 0o600
    r = subprocess.run(["openssl", "verify", "-purpose", "sslclient", "-CAfile", str(client / "ca.pem"),
                        str(client / "cert.pem")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # ... and the docker SDK, configured exactly as for an engine, does mutual TLS with a host's cert and key
    # (openssl s_server on the host stands in for dockerd --tlsverify; reached through an SSH tunnel)
    h = hosts[0]
    lab.docker_exec(h, f"(timeout 60 openssl s_server -www -accept 127.0.0.1:2376 -naccept 2 "
                       f"-cert /etc/pki/tls/certs/{h}_cert.pem -key /etc/pki/tls/private/{h}_key.pem "
                       f"-CAfile {ANCHOR} -Verify 1 -verify_return_error >/tmp/s_server.log 2>&1 &)")
    port = tunnel(lab, h, 2376)
    sdk = stage_docker_client(lab.context_dir, f"tcp://127.0.0.1:{port}", version="1.41")  # no engine: no /version
    assert sdk.api.verify == str(client / "ca.pem")
    reply = sdk.api.get(f"{sdk.api.base_url}/", timeout=20)
    assert reply.status_code == 200 and "CN=docker-client.htls" in reply.text, reply.text[:500]
    with pytest.raises(requests.exceptions.RequestException):  # without the client cert the server refuses
        requests.get(f"https://127.0.0.1:{port}/", verify=str(client / "ca.pem"), timeout=20)
    _, log = lab.docker_exec(h, "cat /tmp/s_server.log")
    assert "peer did not return a certificate" in log, log

    # second run: nothing changes, nothing is signed again
    certs = {h: lab.docker_exec(h, f"md5sum /etc/pki/tls/certs/{h}_cert.pem")[1] for h in hosts}
    t0 = time.monotonic()
    report = hive.run(RUNBOOK)
    print(f"second run: {time.monotonic() - t0:.1f} s")
    assert report.exit_code == EXIT_OK, report.text()
    assert report.changed == 0, report.changes()
    assert {h: lab.docker_exec(h, f"md5sum /etc/pki/tls/certs/{h}_cert.pem")[1] for h in hosts} == certs

    # a lost certificate is signed again for that host only, from the same host key
    lost = hosts[0]
    lab.docker_exec(lost, f"rm /etc/pki/tls/certs/{lost}_cert.pem")
    report = hive.run(RUNBOOK, tags=["tls-certificate"])
    assert report.exit_code == EXIT_OK, report.text()
    assert {h for h, *_ in report.changes()} == {lost}
    rc, out = lab.docker_exec(lost, f"openssl verify -CAfile {ANCHOR} /etc/pki/tls/certs/{lost}_cert.pem")
    assert rc == 0, out

    # the site brings its own CA: check mode predicts a new signature everywhere, the run re-signs the same keys
    keys = {h: lab.docker_exec(h, f"md5sum /etc/pki/tls/private/{h}_key.pem")[1] for h in hosts}
    old_ca = (ca_dir / "cacert.pem").read_text()
    byo = new_ca("ca.byo.example", bits=2048)
    byo_pem = byo.cert_pem.decode()
    byo_key = byo.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    (lab.root / "inventory" / "group_vars" / "all.yml").write_text(yaml.safe_dump(
        {"hive_ntp_servers": [ntp_ip], "hive_ca_cert": byo_pem, "hive_ca_key": byo_key}))
    hive = Hive(root=lab.root, stage="private")
    before = {h: fingerprint(lab, h) for h in hosts}
    report = hive.run(RUNBOOK, check=True)
    assert report.exit_code == EXIT_OK, report.text()
    assert {h: fingerprint(lab, h) for h in hosts} == before
    assert (ca_dir / "cacert.pem").read_text() == old_ca
    assert any(c.ident == "ca" and "hive_ca_cert" in c.summary for o in report.outcomes for c in o.changes)
    for h in hosts:
        assert any(o.host == h and o.step == "tls-certificate" and "not signed by the stage CA" in c.summary
                   for o in report.outcomes for c in o.changes), report.changes()
    report = hive.run(RUNBOOK)
    assert report.exit_code == EXIT_OK, report.text()
    assert (ca_dir / "cacert.pem").read_text() == byo_pem
    assert byo_key not in report.text() and pem_body(byo_key)[:100] not in report.to_json()
    for h in hosts:
        assert lab.docker_exec(h, f"md5sum /etc/pki/tls/private/{h}_key.pem")[1] == keys[h]
        rc, out = lab.docker_exec(h, f"openssl verify -CAfile {ANCHOR} /etc/pki/tls/certs/{h}_cert.pem && "
                                     f"cmp {ANCHOR} /home/admin/.docker/ca.pem && "
                                     f"cmp /etc/pki/tls/certs/{h}_cert.pem /home/admin/.docker/cert.pem")
        assert rc == 0, out
        _, bundle = lab.docker_exec(h, "tr -d '\\n' < /etc/ssl/certs/ca-certificates.crt")
        assert pem_body(byo_pem) in bundle and pem_body(old_ca) not in bundle
        _, anchor = lab.docker_exec(h, f"cat {ANCHOR}")
        assert anchor == byo_pem
    r = subprocess.run(["openssl", "verify", "-CAfile", str(ca_dir / "cacert.pem"), str(client / "cert.pem")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    report = hive.run(RUNBOOK)
    assert report.exit_code == EXIT_OK and report.changed == 0, report.changes()
