"""tls-certificate, docker-client, ntp-client: canned facts of both families in, exact commands and files out."""

from __future__ import annotations

import base64
import datetime
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from probe_runner import run_probe

from hive_nornir.ca import HostIdentity, StageCA, new_ca, sign_csr
from hive_nornir.engine.errors import StepFailed
from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.base import Plan
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.primitives.lines import BlockInFile, LineInFile
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.service import Service
from hive_nornir.tasks.docker.docker_client import (
    Account,
    client_primitives,
    copy_on_host,
    lookup_script,
    parse_passwd,
    stage_docker_client,
)
from hive_nornir.tasks.host.ntp_client import (
    DEBIAN_STOCK,
    DEFAULT_SOURCE,
    CommentLines,
    ntp_primitives,
    ntp_servers,
    unit,
)
from hive_nornir.tasks.pki.tls_certificate import (
    MARK,
    decide,
    docker_handlers,
    key_csr_primitives,
    parse_read,
    pem_body,
    read_script,
    subject,
    trust_primitives,
)

DEB, RH = canned("debian"), canned("redhat")
HOST = "p-hive0.pdns"
ID = HostIdentity(HOST, "10.77.0.4")


def text_out(content: str | None) -> str:
    """What the line/block probe prints for a file (None: absent, parent there)."""
    if content is None:
        return "exists=no\nparent=yes"
    data = content.encode()
    return f"stat=644 root root {len(data)}\ncontent={base64.b64encode(data).decode()}"


def uploaded(plan: Plan) -> str:
    [upload] = plan.uploads
    return upload.content.decode()


# -- tls-certificate ------------------------------------------------------------------------------------------
def test_subject_is_hive_builders() -> None:
    assert subject(HOST) == "/DC=pdns/DC=p-hive0/CN=p-hive0.pdns"


def test_key_and_csr_are_made_on_the_host() -> None:
    items = key_csr_primitives(HOST)
    dirs = [(d.path, d.mode) for d in items if isinstance(d, Directory)]
    assert dirs == [("/etc/pki/tls/misc", "0755"), ("/etc/pki/tls/private", "0700"), ("/etc/pki/tls/certs", "0755")]
    key, chmod, csr = [c for c in items if isinstance(c, Command)]
    assert key.cmd == ("umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 "
                       "-out /etc/pki/tls/private/p-hive0.pdns_key.pem.new "
                       "&& mv -f /etc/pki/tls/private/p-hive0.pdns_key.pem.new "
                       "/etc/pki/tls/private/p-hive0.pdns_key.pem")
    assert key.creates == "/etc/pki/tls/private/p-hive0.pdns_key.pem"
    assert chmod.cmd == "chmod 0600 /etc/pki/tls/private/p-hive0.pdns_key.pem"
    assert csr.cmd == ("openssl req -new -sha256 -key /etc/pki/tls/private/p-hive0.pdns_key.pem "
                       "-subj /DC=pdns/DC=p-hive0/CN=p-hive0.pdns -out /etc/pki/tls/misc/p-hive0.pdns.csr.new "
                       "&& mv -f /etc/pki/tls/misc/p-hive0.pdns.csr.new /etc/pki/tls/misc/p-hive0.pdns.csr")
    assert "openssl req -in /etc/pki/tls/misc/p-hive0.pdns.csr -noout -pubkey" in (csr.unless or "")


@pytest.mark.parametrize(("facts", "anchor", "update", "bundle"), [
    (DEB, "/usr/local/share/ca-certificates/hive-cacert.crt", "update-ca-certificates",
     "/etc/ssl/certs/ca-certificates.crt"),
    (RH, "/etc/pki/ca-trust/source/anchors/cacert.pem", "update-ca-trust",
     "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"),
])
def test_trust_anchor_and_store(facts: Facts, anchor: str, update: str, bundle: str) -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nQUJD\nREVG\n-----END CERTIFICATE-----\n"
    file, command = trust_primitives(facts, pem)
    assert isinstance(file, File) and (file.path, file.data, file.mode) == (anchor, pem, "0644")
    assert isinstance(command, Command) and command.cmd == update
    assert command.unless == f"tr -d '\\n' < {bundle} | grep -qF QUJDREVG"
    assert pem_body(pem) == "QUJDREVG"


def test_trust_store_guard_really_finds_the_ca(tmp_path: Path) -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nQUJD\nREVG\n-----END CERTIFICATE-----\n"
    _, command = trust_primitives(DEB, pem)
    assert isinstance(command, Command)
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes(b"-----BEGIN CERTIFICATE-----\nWFla\n-----END CERTIFICATE-----\n")
    probe = Command(cmd="true", unless=(command.unless or "").replace("/etc/ssl/certs/ca-certificates.crt",
                                                                     str(bundle)))
    assert "run=yes" in run_probe(probe, DEB)
    bundle.write_bytes(bundle.read_bytes() + pem)
    assert "run=no" in run_probe(probe, DEB)


def test_read_script_never_prints_the_private_key() -> None:
    script = read_script(HOST)
    assert "openssl pkey -in /etc/pki/tls/private/p-hive0.pdns_key.pem -pubout" in script
    assert "cat /etc/pki/tls/private" not in script


def test_parse_read() -> None:
    found = parse_read(f"{MARK}pub\nPUB\n{MARK}csr\n{MARK}cert\nCERT\n{MARK}docker\nloaded\n")
    assert found == {"pub": b"PUB\n", "csr": None, "cert": b"CERT\n", "docker": b"loaded\n"}
    assert docker_handlers(found) == ("restart:docker",)
    assert docker_handlers({**found, "docker": b"not-found\n"}) == ()


def test_anchor_change_restarts_docker_only_when_asked() -> None:
    anchor, _ = trust_primitives(DEB, b"x", ("restart:docker",))
    assert anchor.notify == ("restart:docker",)
    assert trust_primitives(DEB, b"x")[0].notify == ()


@pytest.fixture(scope="module")
def ca() -> StageCA:
    return new_ca("ca.pdns", bits=2048)


@pytest.fixture(scope="module")
def host_files() -> dict[str, bytes | None]:
    """What a host with a key and CSR (no cert yet) shows the controller."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"pub": pub, "csr": csr, "cert": None}


def test_decide_signs_a_new_host_and_keeps_a_fitting_cert(ca: StageCA, host_files: dict[str, bytes | None]) -> None:
    first = decide(ca, ID, host_files, check=False)
    assert first.reason == "no certificate installed" and first.cert
    kept = decide(ca, ID, {**host_files, "cert": first.cert}, check=False)
    assert kept.reason == "" and kept.cert == first.cert


def test_decide_in_check_mode_only_reports(ca: StageCA, host_files: dict[str, bytes | None]) -> None:
    fresh = decide(ca, ID, {"pub": None, "csr": None, "cert": None}, check=True)
    assert fresh.cert is None and "would be created" in fresh.reason
    other_ca = sign_csr(new_ca("other", bits=2048), host_files["csr"] or b"", ID)
    stale = decide(ca, ID, {**host_files, "cert": other_ca}, check=True)
    assert stale.cert is None and "not signed by the stage CA" in stale.reason


def test_decide_refuses_a_stale_csr(ca: StageCA, host_files: dict[str, bytes | None]) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    pub = other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(StepFailed, match="CSR does not match"):
        decide(ca, ID, {**host_files, "pub": pub}, check=False)
    with pytest.raises(StepFailed, match="no key or CSR"):
        decide(ca, ID, {"pub": None, "csr": None, "cert": None}, check=False)


# -- docker-client --------------------------------------------------------------------------------------------------
def test_parse_passwd() -> None:
    assert parse_passwd("admin:x:1000:1000:Admin:/home/admin:/bin/bash\n") == Account("admin", "1000", "1000",
                                                                                       "/home/admin")
    with pytest.raises(StepFailed):
        parse_passwd("garbage")


@pytest.mark.parametrize(("facts", "anchor"), [(DEB, "/usr/local/share/ca-certificates/hive-cacert.crt"),
                                               (RH, "/etc/pki/ca-trust/source/anchors/cacert.pem")])
def test_client_files_are_copied_on_the_host(facts: Facts, anchor: str) -> None:
    d, ca, cert, key = client_primitives(facts, HOST, Account("admin", "1000", "1001", "/home/admin"))
    assert isinstance(d, Directory) and (d.path, d.mode, d.owner, d.group) == ("/home/admin/.docker", "0700",
                                                                                 "1000", "1001")
    assert [c.cmd for c in (ca, cert, key) if isinstance(c, Command)] == [
        f"install -m 0644 -o 1000 -g 1001 {anchor} /home/admin/.docker/ca.pem",
        "install -m 0644 -o 1000 -g 1001 /etc/pki/tls/certs/p-hive0.pdns_cert.pem /home/admin/.docker/cert.pem",
        "install -m 0600 -o 1000 -g 1001 /etc/pki/tls/private/p-hive0.pdns_key.pem /home/admin/.docker/key.pem",
    ]


def test_lookup_script_round_trip(tmp_path: Path) -> None:
    have = tmp_path / "a"
    have.write_text("x")
    script = lookup_script("root", (str(have),))
    assert script == f"getent passwd root; if [ -f {have} ]; then echo sources=yes; else echo sources=no; fi"
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True).stdout
    entry, _, flag = out.rpartition("sources=")
    assert parse_passwd(entry).uid == "0" and flag.strip() == "yes"
    out = subprocess.run(["/bin/sh", "-c", lookup_script("root", (str(tmp_path / "b"),))],
                         capture_output=True, text=True).stdout
    assert out.endswith("sources=no\n")


def test_copy_on_host_guard_round_trip(tmp_path: Path) -> None:
    src, dst = tmp_path / "key.pem", tmp_path / "copy.pem"
    src.write_text("k\n")
    uid, gid = str(src.stat().st_uid), str(src.stat().st_gid)
    cmd = copy_on_host(str(src), str(dst), "0600", uid, gid)
    assert "run=yes" in run_probe(cmd, DEB)
    dst.write_text("k\n")
    dst.chmod(0o644)
    assert "run=yes" in run_probe(cmd, DEB)  # same content, wrong mode
    dst.chmod(0o600)
    assert "run=no" in run_probe(cmd, DEB)


# -- ntp-client ---------------------------------------------------------------------------------------------------
EL_STOCK = """\
# Use public servers from the pool.ntp.org project.
pool 2.almalinux.pool.ntp.org iburst
server 0.centos.pool.ntp.org iburst
server 1.centos.pool.ntp.org iburst
  pool 2.rocky.pool.ntp.org iburst
#pool commented.example iburst
server ntp.example.com iburst
driftfile /var/lib/chrony/drift
"""


def test_ntp_servers_and_units() -> None:
    assert ntp_servers("10.0.0.1") == ["10.0.0.1"]
    assert ntp_servers(["ntp1.example", "10.0.0.2"]) == ["ntp1.example", "10.0.0.2"]
    with pytest.raises(StepFailed, match="not a host name"):
        ntp_servers(["a b"])
    with pytest.raises(StepFailed, match="empty"):
        ntp_primitives(DEB, [])
    assert (unit(DEB), unit(RH)) == ("chrony", "chronyd")


def test_debian_writes_config_before_the_package() -> None:
    d, sources, comment, sourcedir, pkg, svc = ntp_primitives(DEB, ["10.82.0.5", "ntp.example"])
    assert isinstance(d, Directory) and d.path == "/etc/chrony/sources.d"
    assert isinstance(sources, File) and sources.path == "/etc/chrony/sources.d/hive.sources"
    assert sources.data == (b"# managed by hive_nornir: hive_ntp_servers\n"
                            b"server 10.82.0.5 iburst\nserver ntp.example iburst\n")
    assert isinstance(comment, CommentLines) and comment.path == "/etc/chrony/chrony.conf"
    assert isinstance(sourcedir, LineInFile) and sourcedir.line == "sourcedir /etc/chrony/sources.d"
    assert isinstance(pkg, Packages) and pkg.names == ("chrony",)
    assert isinstance(svc, Service) and (svc.name, svc.enabled, svc.state) == ("chrony", True, "started")
    assert all(p.notify == ("restart:chrony",) for p in (sources, comment, sourcedir))


def test_debian_missing_config_starts_from_the_stock_file_without_its_pool() -> None:
    comment = ntp_primitives(DEB, ["10.82.0.5"])[2]
    plan = comment.plan(DEB, text_out(None))
    new = uploaded(plan)
    assert "#pool 2.debian.pool.ntp.org iburst\n" in new and "sourcedir /etc/chrony/sources.d\n" in new
    assert new == DEBIAN_STOCK
    # an installed stock file (pool active) gets the pool commented, nothing else
    stock = DEBIAN_STOCK.replace("#pool 2.debian", "pool 2.debian")
    plan = comment.plan(DEB, text_out(stock))
    assert uploaded(plan) == DEBIAN_STOCK and plan.summary.startswith("comment out")
    assert not comment.plan(DEB, text_out(DEBIAN_STOCK)).changed


def test_el_edits_chrony_conf_after_the_package_and_comments_alma_pool_too() -> None:
    pkg, comment, block, svc = ntp_primitives(RH, ["ntp.example.com", "10.0.0.1"])
    assert isinstance(pkg, Packages) and isinstance(svc, Service) and svc.name == "chronyd"
    assert isinstance(comment, CommentLines) and comment.path == "/etc/chrony.conf"
    plan = comment.plan(RH, text_out(EL_STOCK))
    assert uploaded(plan) == """\
# Use public servers from the pool.ntp.org project.
#pool 2.almalinux.pool.ntp.org iburst
#server 0.centos.pool.ntp.org iburst
#server 1.centos.pool.ntp.org iburst
#  pool 2.rocky.pool.ntp.org iburst
#pool commented.example iburst
server ntp.example.com iburst
driftfile /var/lib/chrony/drift
"""
    assert not comment.plan(RH, text_out(None)).changed  # the package brings the file; nothing to invent
    assert isinstance(block, BlockInFile) and block.path == "/etc/chrony.conf" and not block.create
    edited = uploaded(block.plan(RH, text_out(uploaded(plan))))
    assert edited.endswith("# BEGIN HIVE MANAGED BLOCK ntp servers\nserver ntp.example.com iburst\n"
                           "server 10.0.0.1 iburst\n# END HIVE MANAGED BLOCK ntp servers\n")
    assert not comment.plan(RH, text_out(edited)).changed  # the managed lines are never commented
    assert all(p.notify == ("restart:chronyd",) for p in (comment, block))


def test_site_servers_on_a_vendor_pool_are_kept() -> None:
    comment = ntp_primitives(RH, ["1.centos.pool.ntp.org"])[1]
    text = "server 1.centos.pool.ntp.org iburst\nserver 2.centos.pool.ntp.org iburst\n"
    assert uploaded(comment.plan(RH, text_out(text))) == ("server 1.centos.pool.ntp.org iburst\n"
                                                          "#server 2.centos.pool.ntp.org iburst\n")


def test_comment_lines_probe_round_trip(tmp_path: Path) -> None:
    conf = tmp_path / "chrony.conf"
    conf.write_text("pool 2.debian.pool.ntp.org iburst\nkeyfile /etc/chrony/chrony.keys\n")
    item = CommentLines(path=str(conf), regexp=DEFAULT_SOURCE)
    plan = item.plan(DEB, run_probe(item, DEB))
    assert uploaded(plan) == "#pool 2.debian.pool.ntp.org iburst\nkeyfile /etc/chrony/chrony.keys\n"
    conf.write_text(uploaded(plan))
    assert not item.plan(DEB, run_probe(item, DEB)).changed


def test_stage_docker_client_ignores_env_ca_bundles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    d = tmp_path / "docker-client"
    d.mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (d / name).write_text("x")
    client = stage_docker_client(tmp_path, "tcp://127.0.0.1:2376", version="1.41")
    assert client.api.base_url == "https://127.0.0.1:2376"
    assert client.api.verify == str(d / "ca.pem") and client.api.cert == (str(d / "cert.pem"), str(d / "key.pem"))
    assert client.api.trust_env is False
    settings = client.api.merge_environment_settings("https://127.0.0.1:2376/version", {}, None, None, None)
    assert settings["verify"] == str(d / "ca.pem")


def ahead(monkeypatch: pytest.MonkeyPatch, hours: float) -> None:
    """The controller's clock `hours` ahead of the real one (as when a lab host moved the clock)."""
    import hive_nornir.ca as ca_module

    real = ca_module._now
    monkeypatch.setattr(ca_module, "_now", lambda: real() + datetime.timedelta(hours=hours))


def test_a_cert_not_valid_yet_is_signed_again(ca: StageCA, host_files: dict[str, bytes | None],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 item 18: a cert signed while the clock was 9 hours ahead was reported ok (peers refuse it)."""
    with monkeypatch.context() as m:
        ahead(m, 9)
        future = decide(ca, ID, host_files, check=False).cert
    assert future is not None
    now = datetime.datetime.now(datetime.timezone.utc)
    assert x509.load_pem_x509_certificate(future).not_valid_before_utc > now
    stale = decide(ca, ID, {**host_files, "cert": future}, check=True)
    assert stale.cert is None and "not valid yet" in stale.reason
    fixed = decide(ca, ID, {**host_files, "cert": future}, check=False)
    assert "not valid yet" in fixed.reason and fixed.cert is not None
    assert x509.load_pem_x509_certificate(fixed.cert).not_valid_before_utc <= now + datetime.timedelta(minutes=1)
    assert decide(ca, ID, {**host_files, "cert": fixed.cert}, check=False).reason == ""


def test_a_ca_not_valid_yet_fails_clearly_in_every_mode(host_files: dict[str, bytes | None],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing again with a CA from the future cannot help: the run fails with the dates and what to do."""
    with monkeypatch.context() as m:
        ahead(m, 9)
        future_ca = new_ca("ca.future", bits=2048)
    for check in (True, False):
        with pytest.raises(StepFailed, match=r"stage CA is not valid before .* Fix the clock"):
            decide(future_ca, ID, host_files, check=check)
