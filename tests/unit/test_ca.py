"""The stage CA on the controller: create/adopt, sign CSRs with the inventory's SANs, judge installed certs."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hive_nornir.ca import (
    CAError,
    HostIdentity,
    StageCA,
    ca_problem,
    cert_problem,
    csr_matches_key,
    docker_client_state,
    ensure_ca,
    ensure_docker_client,
    existing_ca,
    load_ca,
    new_ca,
    sign_csr,
)

HOST = HostIdentity("p-hive0.pdns", "10.77.0.4")


@pytest.fixture(scope="module")
def ca() -> StageCA:
    """One small CA for the module (2048 bits: speed; the product uses 4096)."""
    return new_ca("ca.pdns", bits=2048)


@pytest.fixture(scope="module")
def host_key() -> ec.EllipticCurvePrivateKey:
    """Stands in for the key the host makes with openssl (it never leaves the host in the product)."""
    return ec.generate_private_key(ec.SECP256R1())


def csr_for(key: ec.EllipticCurvePrivateKey, cn: str = HOST.name, san: str | None = None) -> bytes:
    """A CSR as `openssl req -new` would make it (optionally asking for a SAN the CA must ignore)."""
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """What `openssl pkey -pubout` prints on the host."""
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def pair_pem(ca: StageCA) -> tuple[bytes, bytes]:
    """(cert, key) PEM of a CA, as a site would paste them into hive_ca_cert / hive_ca_key."""
    key = ca.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    return ca.cert_pem, key


# -- the CA ---------------------------------------------------------------------------------------------------
def test_new_ca_is_a_ca_like_hive_builders(ca: StageCA) -> None:
    assert ca.cert.subject.rfc4514_string() == "CN=ca.pdns"
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ku = ca.cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and ku.digital_signature
    assert ca.cert.not_valid_after_utc - ca.cert.not_valid_before_utc > datetime.timedelta(days=36000)


def test_ensure_ca_creates_once_with_private_key_0600(tmp_path: Path) -> None:
    first, made = ensure_ca(tmp_path, "ca.pdns", bits=2048)
    assert made
    key = tmp_path / "ca" / "cakey.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "ca").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "ca" / "cacert.pem").read_bytes() == first.cert_pem
    key.chmod(0o644)
    again, made = ensure_ca(tmp_path, "ca.pdns", bits=2048)
    assert not made and again.cert_pem == first.cert_pem
    assert key.stat().st_mode & 0o777 == 0o600  # a loosened key is tightened again


def test_site_ca_is_adopted_and_replaces_the_stored_one(tmp_path: Path, ca: StageCA) -> None:
    ensure_ca(tmp_path, "ca.pdns", bits=2048)
    cert_pem, key_pem = pair_pem(ca)
    adopted, made = ensure_ca(tmp_path, "ca.pdns", cert_pem.decode(), key_pem.decode())
    assert made and adopted.cert_pem == ca.cert_pem
    assert (tmp_path / "ca" / "cacert.pem").read_bytes() == ca.cert_pem
    assert (tmp_path / "ca" / "cakey.pem").read_bytes() == key_pem
    assert not ensure_ca(tmp_path, "ca.pdns", cert_pem.decode(), key_pem.decode())[1]
    assert existing_ca(tmp_path) is not None


def test_bad_site_ca_is_refused(tmp_path: Path, ca: StageCA) -> None:
    other = new_ca("other", bits=2048)
    cert_pem, _ = pair_pem(ca)
    _, other_key = pair_pem(other)
    with pytest.raises(CAError, match="does not belong"):
        ensure_ca(tmp_path, "x", cert_pem, other_key)
    with pytest.raises(CAError, match="together"):
        ensure_ca(tmp_path, "x", cert_pem, None)
    with pytest.raises(CAError, match="cannot read"):
        load_ca(b"not a pem", b"nor this")


def test_half_a_ca_is_never_replaced(tmp_path: Path, ca: StageCA) -> None:
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca" / "cacert.pem").write_bytes(ca.cert_pem)
    with pytest.raises(CAError, match="only one of"):
        ensure_ca(tmp_path, "ca.pdns", bits=2048)
    assert (tmp_path / "ca" / "cacert.pem").read_bytes() == ca.cert_pem


def test_existing_ca_never_creates(tmp_path: Path) -> None:
    assert existing_ca(tmp_path) is None
    assert not (tmp_path / "ca" / "cacert.pem").exists()


# -- signing -------------------------------------------------------------------------------------------------
def test_signed_cert_has_inventory_sans_and_both_usages(ca: StageCA, host_key: ec.EllipticCurvePrivateKey) -> None:
    cert = x509.load_pem_x509_certificate(sign_csr(ca, csr_for(host_key, san="evil.example"), HOST))
    cert.verify_directly_issued_by(ca.cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(sans) == [x509.DNSName("p-hive0.pdns"), x509.IPAddress(ipaddress.ip_address("10.77.0.4")),
                          x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    ekus = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert ekus == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo) == public_pem(host_key)


def test_openssl_verifies_the_signed_cert(tmp_path: Path, ca: StageCA, host_key: ec.EllipticCurvePrivateKey) -> None:
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "cert.pem").write_bytes(sign_csr(ca, csr_for(host_key), HOST))
    r = subprocess.run(["openssl", "verify", "-purpose", "sslserver", "-CAfile", str(tmp_path / "ca.pem"),
                        str(tmp_path / "cert.pem")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_csr_with_a_broken_signature_is_refused(ca: StageCA) -> None:
    with pytest.raises(CAError, match="cannot read the CSR"):
        sign_csr(ca, b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", HOST)


def test_csr_matches_key(host_key: ec.EllipticCurvePrivateKey) -> None:
    assert csr_matches_key(csr_for(host_key), public_pem(host_key))
    assert not csr_matches_key(csr_for(ec.generate_private_key(ec.SECP256R1())), public_pem(host_key))


# -- when to sign again ------------------------------------------------------------------------------------------
def test_cert_that_fits_is_kept(ca: StageCA, host_key: ec.EllipticCurvePrivateKey) -> None:
    cert = sign_csr(ca, csr_for(host_key), HOST)
    assert cert_problem(cert, ca, public_pem(host_key), HOST) == ""


@pytest.mark.parametrize(("change", "reason"), [
    ("missing", "no certificate installed"),
    ("garbage", "unreadable"),
    ("other_ca", "not signed by the stage CA"),
    ("other_key", "does not match the host key"),
    ("other_ip", "other subjectAltNames"),
    ("expiring", "expires soon"),
])
def test_cert_problems(ca: StageCA, host_key: ec.EllipticCurvePrivateKey, change: str, reason: str) -> None:
    pub = public_pem(host_key)
    host = HOST
    cert: bytes | None = sign_csr(ca, csr_for(host_key), HOST)
    if change == "missing":
        cert = None
    elif change == "garbage":
        cert = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    elif change == "other_ca":
        cert = sign_csr(new_ca("other", bits=2048), csr_for(host_key), HOST)
    elif change == "other_key":
        pub = public_pem(ec.generate_private_key(ec.SECP256R1()))
    elif change == "other_ip":
        host = HostIdentity(HOST.name, "10.77.0.9")
    elif change == "expiring":
        cert = sign_csr(ca, csr_for(host_key), HOST, days=10)
    assert reason in cert_problem(cert, ca, pub, host)


# -- the controller's docker client files ---------------------------------------------------------------------------
def test_docker_client_files_signed_once(tmp_path: Path, ca: StageCA) -> None:
    assert docker_client_state(tmp_path, None).startswith("create")
    assert docker_client_state(tmp_path, ca).startswith("write")
    files, made = ensure_docker_client(tmp_path, ca, "docker-client.pdns")
    assert made and files.key.stat().st_mode & 0o777 == 0o600
    assert files.ca.read_bytes() == ca.cert_pem
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    cert.verify_directly_issued_by(ca.cert)
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    before = files.cert.read_bytes(), files.key.read_bytes()
    assert docker_client_state(tmp_path, ca) == ""
    assert not ensure_docker_client(tmp_path, ca, "docker-client.pdns")[1]
    assert (files.cert.read_bytes(), files.key.read_bytes()) == before


def test_docker_client_follows_a_new_ca(tmp_path: Path, ca: StageCA) -> None:
    files, _ = ensure_docker_client(tmp_path, ca, "docker-client.pdns")
    other = new_ca("other", bits=2048)
    assert docker_client_state(tmp_path, other)
    _, made = ensure_docker_client(tmp_path, other, "docker-client.pdns")
    assert made
    x509.load_pem_x509_certificate(files.cert.read_bytes()).verify_directly_issued_by(other.cert)
    assert isinstance(serialization.load_pem_private_key(files.key.read_bytes(), None), ec.EllipticCurvePrivateKey)


def test_rsa_keys_work_too(ca: StageCA) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert cert_problem(sign_csr(ca, csr, HOST), ca, pub, HOST) == ""


def test_cert_not_valid_yet_is_a_problem(ca: StageCA, host_key: ec.EllipticCurvePrivateKey,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 item 18: notBefore in the future (signed under a clock that was ahead) must be signed again."""
    import hive_nornir.ca as ca_module

    real = ca_module._now
    with monkeypatch.context() as m:
        m.setattr(ca_module, "_now", lambda: real() + datetime.timedelta(hours=9))
        cert = sign_csr(ca, csr_for(host_key), HOST)
        assert cert_problem(cert, ca, public_pem(host_key), HOST) == ""  # fine under the clock that made it
        future_ca = new_ca("future", bits=2048)
    assert "not valid yet (notBefore" in cert_problem(cert, ca, public_pem(host_key), HOST)
    assert ca_problem(ca) == "" and "not valid before" in ca_problem(future_ca)
