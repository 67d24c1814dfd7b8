"""docker engine + swarm on a real 4-host stage (3 hives + repository) with internal_cidr 172.31.252.0/22.

Certificates: the setup installs STAND-IN certificates (this module tests docker and swarm, not tls-certificate): a
throwaway CA and per-host key/cert made on the controller (cryptography) and written with File primitives at the
pki_paths locations. The real tls-certificate step makes the key on the host; here only the paths and SANs matter.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hive_nornir.api import Hive
from hive_nornir.engine.context import HostContext
from hive_nornir.engine.outcome import CHANGED, OK
from hive_nornir.engine.runbook import Runbook, Step
from hive_nornir.facts import canned
from hive_nornir.netslice import slice_internal_cidr
from hive_nornir.pki_paths import TLS_DIR, ca_anchor_path, host_cert_path, host_key_path
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.file import File
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.report.run_report import EXIT_OK
from hive_nornir.tasks.docker.docker_engine import daemon_json, docker_engine, override_conf
from hive_nornir.tasks.docker.swarm import swarm_init, swarm_join
from hive_nornir.tasks.net.iptables import iptables

pytestmark = pytest.mark.lab

NAME, CIDR, INTERNAL = "hdock", "10.84.0.0/24", "172.31.252.0/22"
NETS = slice_internal_cidr(INTERNAL)
DEBIAN = canned("debian")

RUNBOOK = Runbook("docker-swarm", (
    Step("iptables", iptables, groups=("servers",), tags=("iptables", "setup-hosts")),  # docker opens its rule sets
    Step("docker", docker_engine, groups=("servers",), tags=("docker", "setup-hosts"), flush_handlers=True),
    Step("swarm-init", swarm_init, groups=("first_hive",), tags=("swarm", "build-cluster")),
    Step("swarm-join", swarm_join, groups=("hives",), tags=("swarm", "build-cluster")),
))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def stand_in_pki(hosts: dict[str, str]) -> tuple[bytes, dict[str, tuple[bytes, bytes]]]:
    """Throwaway CA and, per host, (key, cert) with tls-certificate's SANs and usages."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("ca.hdock")).issuer_name(_name("ca.hdock"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    out: dict[str, tuple[bytes, bytes]] = {}
    for host, ip in {**hosts, "controller": "127.0.0.1"}.items():  # "controller": the SDK's client cert
        key = ec.generate_private_key(ec.SECP256R1())
        sans = [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address(ip)),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        cert = (x509.CertificateBuilder().subject_name(_name(host)).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH,
                                                      ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        out[host] = (pem_key, _pem(cert))
    return _pem(ca), out


CERTS: dict[str, bytes] = {}  # the stand-in CA and controller client cert, for the SDK test


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The hdock lab (module scope: one build for every test here), torn down at the end."""
    from conftest import own_lab  # module scope: make_lab is per test

    with own_lab(tmp_path_factory.mktemp(NAME), NAME, CIDR, 4, separate=True,
                 stage_extra=f"internal_cidr: {INTERNAL}") as lab:
        yield lab


@pytest.fixture(scope="module")
def hive(stage) -> Hive:  # type: ignore[no-untyped-def]
    """Hive on the lab, with stand-in certificates installed on every server."""
    hive = Hive(stage.root, stage="private")
    ips = {h: e["private_ip"] for h, e in stage.state["hosts"].items()}
    ca, certs = stand_in_pki(ips)
    CERTS.update(ca=ca, key=certs["controller"][0], cert=certs["controller"][1])

    def install(ctx: HostContext) -> None:
        key, cert = certs[ctx.name]
        items: list[Primitive] = [Directory(path=f"{TLS_DIR}/{d}", mode="0775") for d in ("private", "certs")]
        items += [File(path=host_key_path(ctx.name), content=key, mode="0600", secret=True),
                  File(path=host_cert_path(ctx.name), content=cert),
                  File(path=ca_anchor_path(ctx.facts), content=ca)]
        ctx.ensure(items)

    report = hive.run_task(install, name="stand-in-certs", groups=("servers",))
    assert report.exit_code == EXIT_OK, report.text()
    return hive


def groups_of(lab) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    """Inventory groups per host, from the product's inventory (p-hive3 is the repository, not a hive)."""
    inventory = Hive(lab.root, stage="private").nornir().inventory
    return {name: {g.name for g in host.groups} for name, host in inventory.hosts.items()}


def hives(lab) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(h for h, groups in groups_of(lab).items() if "hives" in groups)


def first(lab) -> str:  # type: ignore[no-untyped-def]
    return next(h for h, groups in groups_of(lab).items() if "first_hive" in groups)


def sh(lab, host: str, cmd: str) -> str:  # type: ignore[no-untyped-def]
    rc, out = lab.docker_exec(host, cmd)
    assert rc == 0, (host, cmd, out)
    return out


def test_check_mode_on_hosts_without_docker_predicts_and_changes_nothing(stage, hive: Hive) -> None:  # type: ignore[no-untyped-def]
    report = hive.run(RUNBOOK, check=True)
    assert report.exit_code == EXIT_OK, report.text()
    by_step: dict[str, list[str]] = {}
    for o in report.outcomes:
        assert o.status == CHANGED, (o.host, o.step, o.error)
        by_step.setdefault(o.step, []).append(o.host)
    assert sorted(by_step["docker"]) == sorted(stage.hosts)
    assert by_step["swarm-init"] == [first(stage)]
    assert sorted(by_step["swarm-join"]) == sorted(hives(stage))
    joins = [c.summary for o in report.outcomes for c in o.changes if c.ident.startswith("swarm[join")]
    assert len(joins) == 2 and all("as manager" in j for j in joins)
    for host in stage.hosts:
        assert stage.docker_exec(host, "command -v dockerd")[0] != 0
        assert stage.docker_exec(host, "test -e /etc/docker")[0] != 0


def test_first_run_builds_the_engines_and_a_three_manager_swarm(stage, hive: Hive) -> None:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    report = hive.run(RUNBOOK)
    print(f"first run: {time.monotonic() - t0:.1f} s")
    assert report.exit_code == EXIT_OK, report.text()
    text = json.dumps(report.to_dict())
    token = sh(stage, first(stage), "docker swarm join-token -q manager").strip()
    assert token and token not in text  # the join token never reaches the report

    for host in stage.hosts:
        assert sh(stage, host, "cat /etc/docker/daemon.json") == daemon_json(host, DEBIAN)
        assert sh(stage, host, "cat /usr/lib/systemd/system/docker.service.d/override.conf") == \
            override_conf(DEBIAN, NETS.bip)
        # hive-builder's 0700, except on the repository where Debian's docker-registry package owns a subdirectory
        want_mode = "755" if "repository" in groups_of(stage)[host] else "700"
        assert sh(stage, host, "stat -c %a /etc/docker").strip() == want_mode
        assert "docker" in sh(stage, host, "id -Gn admin").split()
        assert sh(stage, host, "systemctl is-enabled docker; systemctl is-active docker").split() == \
            ["enabled", "active"]
        assert "inet 172.31.254.129/25" in sh(stage, host, "ip -4 addr show docker0")
        listening = sh(stage, host, "ss -ltnp")
        assert re.search(r"\*:2376|0\.0\.0\.0:2376", listening) and "dockerd" in listening
        cmdline = sh(stage, host, "tr '\\0' ' ' < /proc/$(systemctl show -p MainPID --value docker)/cmdline")
        assert "fd://" not in cmdline and f"--bip={NETS.bip}" in cmdline

    nodes = sh(stage, first(stage), "docker node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'")
    rows = [line.split() for line in nodes.splitlines() if line.strip()]
    assert len(rows) == 3, nodes
    assert all(r[1] == "Ready" for r in rows) and sorted(r[2] for r in rows) == ["Leader", "Reachable", "Reachable"]
    ids = sh(stage, first(stage), "docker node ls -q").split()
    labels = {}
    for node in ids:
        info = json.loads(sh(stage, first(stage), f"docker node inspect {node}"))[0]
        labels[info["Description"]["Hostname"]] = info["Spec"]["Labels"]
    groups = groups_of(stage)
    for host in hives(stage):
        want = {g: "true" for g in groups[host]}
        assert {"hives", "servers", "private"} <= set(want)
        assert ("first_hive" in want) == (host == first(stage))
        got = next(v for k, v in labels.items() if k == host.split(".")[0] or k == host)
        assert got == want, (host, labels)
    repo = next(h for h in stage.hosts if h not in hives(stage))
    assert sh(stage, repo, "docker info --format '{{.Swarm.LocalNodeState}}'").strip() == "inactive"

    for host in hives(stage):
        gw = json.loads(sh(stage, host, "docker network inspect docker_gwbridge"))[0]
        assert [c["Subnet"] for c in gw["IPAM"]["Config"]] == [NETS.docker_gwbridge]
        assert gw["Options"]["com.docker.network.bridge.enable_icc"] == "false"
        nets = sh(stage, host, "docker network ls --filter driver=overlay --format '{{.Name}}'").split()
        assert "apiarist-ingress" in nets and "ingress" not in nets
    ingress = json.loads(sh(stage, first(stage), "docker network inspect apiarist-ingress"))[0]
    assert ingress["Ingress"] is True
    assert ingress["IPAM"]["Config"] == [{"Subnet": NETS.ingress_subnet, "Gateway": NETS.ingress_gateway}]


def test_tls_api_on_2376_needs_a_client_certificate_from_the_stage_ca(stage, hive: Hive) -> None:  # type: ignore[no-untyped-def]
    client, server = hives(stage)[1], first(stage)
    ip = stage.state["hosts"][server]["private_ip"]
    tls = (f"--tlscacert {ca_anchor_path(DEBIAN)} --tlscert {host_cert_path(client)} "
           f"--tlskey {host_key_path(client)}")
    out = sh(stage, client, f"docker --tlsverify {tls} -H tcp://{ip}:2376 info --format '{{{{.Name}}}}'")
    assert out.strip() == server.split(".")[0] or out.strip() == server
    rc, out = stage.docker_exec(client, f"docker --tlsverify --tlscacert {ca_anchor_path(DEBIAN)} "
                                        f"-H tcp://{ip}:2376 info")
    assert rc != 0, out  # no client certificate: refused
    rc, out = stage.docker_exec(client, f"docker -H tcp://{ip}:2376 info")
    assert rc != 0, out  # plain HTTP: refused


def test_second_run_changes_nothing_and_joins_nothing_twice(stage, hive: Hive) -> None:  # type: ignore[no-untyped-def]
    before = sh(stage, first(stage), "docker node ls -q").split()
    t0 = time.monotonic()
    report = hive.run(RUNBOOK)
    print(f"second run: {time.monotonic() - t0:.1f} s")
    assert report.exit_code == EXIT_OK, report.text()
    assert report.changed == 0, report.changes()
    assert all(o.status == OK for o in report.outcomes)
    assert sh(stage, first(stage), "docker node ls -q").split() == before
    assert hive.run(RUNBOOK, check=True).changed == 0


@contextmanager
def tunnel(lab, via: str, target_ip: str, port: int) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """127.0.0.1:<free port> on the controller -> SSH to `via` -> target_ip:port (the provider publishes only 22)."""
    client = lab.ssh(via)
    transport = client.get_transport()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def pump(conn: socket.socket) -> None:
        chan = transport.open_channel("direct-tcpip", (target_ip, port), ("127.0.0.1", 0))
        with conn, chan, suppress(OSError):  # the client hung up or the tunnel is closing
            while not stop.is_set():
                ready, _, _ = select.select([conn, chan], [], [], 0.5)
                if conn in ready:
                    data = conn.recv(65536)
                    if not data:
                        break
                    chan.sendall(data)
                if chan in ready:
                    data = chan.recv(65536)
                    if not data:
                        break
                    conn.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([listener], [], [], 0.5)
            if ready:
                conn, _ = listener.accept()
                threading.Thread(target=pump, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join()  # returns within one select() period; only then is the listener closed
        listener.close()
        client.close()


def test_docker_sdk_from_the_controller_over_tls(stage, hive: Hive, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The docker SDK with the stage CA and a client cert, through an SSH tunnel to first_hive's 2376."""
    import docker
    from docker.tls import TLSConfig

    # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace the TLSConfig's CA: only the stage CA may count
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    for name in ("ca", "cert", "key"):
        (tmp_path / f"{name}.pem").write_bytes(CERTS[name])
    server = first(stage)
    via = hives(stage)[1]  # over the docker network from another hive, as a remote client would come
    tls = TLSConfig(client_cert=(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")),
                    ca_cert=str(tmp_path / "ca.pem"), verify=True)
    with tunnel(stage, via, stage.state["hosts"][server]["private_ip"], 2376) as port:
        # the server certificate's SANs include IP 127.0.0.1, so verification passes on the tunnel's end
        client = docker.DockerClient(base_url=f"https://127.0.0.1:{port}", tls=tls, timeout=30)
        try:
            info = client.info()
            assert info["Swarm"]["LocalNodeState"] == "active" and info["Swarm"]["ControlAvailable"] is True
            nodes = client.nodes.list()
            assert len(nodes) == 3 and all(n.attrs["Status"]["State"] == "ready" for n in nodes)
            assert {n.attrs["Spec"]["Role"] for n in nodes} == {"manager"}
            assert client.networks.get("apiarist-ingress").attrs["IPAM"]["Config"][0]["Subnet"] == \
                NETS.ingress_subnet
        finally:
            client.close()
        untrusted = TLSConfig(ca_cert=str(tmp_path / "ca.pem"), verify=True)  # no client certificate
        with pytest.raises(docker.errors.DockerException):
            docker.DockerClient(base_url=f"https://127.0.0.1:{port}", tls=untrusted, timeout=10).info()


def test_limit_to_one_hive_rejoins_it_with_the_token_read_from_first_hive(stage, hive: Hive) -> None:  # type: ignore[no-untyped-def]
    """A hive that left is joined again by a run limited to it: token and labels come from first_hive's session."""
    leaver, boss = hives(stage)[2], first(stage)
    node = sh(stage, leaver, "docker info --format '{{.Swarm.NodeID}}'").strip()
    sh(stage, boss, f"docker node demote {node}")
    sh(stage, leaver, "docker swarm leave")
    sh(stage, boss, f"docker node rm --force {node}")
    report = hive.run(RUNBOOK, tags=["swarm"], limit=leaver.split(".")[0])
    assert report.exit_code == EXIT_OK, report.text()
    assert {o.host for o in report.outcomes} == {leaver}
    assert [c.ident for o in report.outcomes for c in o.changes] == ["swarm[join manager]", "swarm[labels]"]
    rows = sh(stage, boss, "docker node ls --format '{{.Status}} {{.ManagerStatus}}'").split("\n")
    assert sorted(r for r in rows if r) == ["Ready Leader", "Ready Reachable", "Ready Reachable"]
    again = hive.run(RUNBOOK, tags=["swarm"], limit=leaver.split(".")[0])
    assert again.changed == 0, again.changes()


def test_a_locked_swarm_is_refused_with_the_reason_and_nothing_changes(stage, hive: Hive) -> None:  # type: ignore[no-untyped-def]
    """Issue 10 item 18: a node in a broken swarm state (here: locked, a swarm of its own with autolock and a
    restarted engine) got `docker swarm init`/`join` and docker's "already part of a swarm"; now both steps fail
    with the state and what to do, before anything changes. Runs last: it takes that hive out of the swarm."""
    victim, boss = hives(stage)[2], first(stage)
    node = sh(stage, victim, "docker info --format '{{.Swarm.NodeID}}'").strip()
    sh(stage, boss, f"docker node demote {node}")
    sh(stage, victim, "docker swarm leave")
    sh(stage, boss, f"docker node rm --force {node}")
    ip = stage.state["hosts"][victim]["private_ip"]
    sh(stage, victim, f"docker swarm init --autolock --advertise-addr {ip} >/dev/null && systemctl restart docker")
    for _ in range(60):  # bounded: the engine comes back within seconds
        if stage.docker_exec(victim, "docker info --format '{{.Swarm.LocalNodeState}}'")[1].strip() == "locked":
            break
        time.sleep(1)
    else:
        pytest.fail("the victim's swarm never reached the locked state")
    networks = sh(stage, victim, "docker network ls -q | sort")
    short = victim.split(".")[0]
    init = hive.run_task(swarm_init, limit=short, name="swarm-init")  # was: `docker swarm init` ran
    joined = hive.run(RUNBOOK, tags=["swarm"], limit=short)
    for report in (init, joined):
        [failed] = [o for o in report.outcomes if o.status != OK]
        assert "locked (autolock)" in failed.error and "docker swarm unlock" in failed.error, failed.error
        assert "already part of a swarm" not in failed.error and not failed.changes
    assert sh(stage, victim, "docker network ls -q | sort") == networks
    assert stage.docker_exec(victim, "docker info --format '{{.Swarm.LocalNodeState}}'")[1].strip() == "locked"
