"""The stage CA on the controller (pure `cryptography`): create or adopt it, sign host CSRs, judge installed certs."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hive_nornir.pki_paths import controller_ca_dir, controller_docker_client_dir

CA_CERT = "cacert.pem"
CA_KEY = "cakey.pem"
CA_DAYS = 36500  # hive-builder's lifetime for the CA and every host certificate
CERT_DAYS = 36500
RENEW_BEFORE = datetime.timedelta(days=30)  # a certificate closer to its end than this is signed again
CA_KEY_BITS = 4096
LOCALHOST = "127.0.0.1"

CaKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class CAError(ValueError):
    """The CA material or a CSR cannot be used (unreadable PEM, key not matching the cert, bad signature)."""


@dataclass(frozen=True)
class StageCA:
    """The loaded CA: its certificate (shareable) and key (never leaves `.hive/<stage>/ca/`)."""

    cert: x509.Certificate
    key: CaKey

    @property
    def cert_pem(self) -> bytes:
        """What hosts install as a trust anchor."""
        return self.cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class HostIdentity:
    """What a host certificate must say: DNS = inventory name, IP = private address and 127.0.0.1."""

    name: str
    private_ip: str

    def sans(self) -> list[x509.GeneralName]:
        """hive-builder's extfile: `subjectAltName = DNS:<host>,IP:<hive_private_ip>,IP:127.0.0.1`."""
        names: list[x509.GeneralName] = [x509.DNSName(self.name)]
        for ip in dict.fromkeys([self.private_ip, LOCALHOST]):
            if ip:
                names.append(x509.IPAddress(ipaddress.ip_address(ip)))
        return names


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write(path: Path, data: bytes, mode: int) -> bool:
    """Write atomically with the mode set before any byte lands; False when the file already held exactly this."""
    if path.exists() and path.read_bytes() == data:
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.chmod(mode)
    tmp.replace(path)
    return True


def _key_pem(key: CaKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def load_ca(cert_pem: bytes, key_pem: bytes) -> StageCA:
    """Parse and cross-check a CA pair: the key must match the certificate, which must be a CA."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except ValueError as e:
        raise CAError(f"cannot read the CA certificate or key: {e}") from e
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CAError("the CA key must be RSA or EC")
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    if (key.public_key().public_bytes(serialization.Encoding.PEM, pub)
            != cert.public_key().public_bytes(serialization.Encoding.PEM, pub)):
        raise CAError("the CA key does not belong to the CA certificate")
    try:
        if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise CAError("the CA certificate is not a CA (basicConstraints CA:FALSE)")
    except x509.ExtensionNotFound as e:
        raise CAError("the CA certificate has no basicConstraints CA:TRUE") from e
    return StageCA(cert, key)


def new_ca(common_name: str, bits: int = CA_KEY_BITS) -> StageCA:
    """A self-signed CA like hive-builder's `ca` role: CA:TRUE, keyUsage digitalSignature, cRLSign, keyCertSign."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return StageCA(cert, key)


def ensure_ca(context_dir: Path, common_name: str, cert_pem: str | bytes | None = None,
              key_pem: str | bytes | None = None, bits: int = CA_KEY_BITS) -> tuple[StageCA, bool]:
    """The stage CA in `.hive/<stage>/ca/` (cakey.pem 0600): adopt the site's own CA when given, else keep the
    existing one, else create it. Returns (ca, changed)."""
    ca_dir = controller_ca_dir(context_dir)
    ca_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = ca_dir / CA_CERT, ca_dir / CA_KEY
    if bool(cert_pem) != bool(key_pem):
        raise CAError("hive_ca_cert and hive_ca_key must be given together")
    if cert_pem and key_pem:
        ca = load_ca(_bytes(cert_pem), _bytes(key_pem))
    elif cert_path.exists() and key_path.exists():
        ca = load_ca(cert_path.read_bytes(), key_path.read_bytes())
        if key_path.stat().st_mode & 0o777 != 0o600:
            key_path.chmod(0o600)
        return ca, False
    elif cert_path.exists() or key_path.exists():
        raise CAError(f"{ca_dir} holds only one of {CA_CERT} and {CA_KEY}: restore the other (never replaced "
                      "silently: hosts trust the existing CA)")
    else:
        ca = new_ca(common_name, bits)
    # the key first: a cert without its key would be adopted as a broken CA by the next run
    changed = _write(key_path, _key_pem(ca.key) if not key_pem else _bytes(key_pem), 0o600)
    changed = _write(cert_path, ca.cert_pem if not cert_pem else _bytes(cert_pem), 0o644) or changed
    return ca, changed


def existing_ca(context_dir: Path, cert_pem: str | bytes | None = None,
                key_pem: str | bytes | None = None) -> StageCA | None:
    """The CA a run would use, without creating anything (check mode): the site's, else the stored one."""
    if cert_pem and key_pem:
        return load_ca(_bytes(cert_pem), _bytes(key_pem))
    ca_dir = controller_ca_dir(context_dir)
    if (ca_dir / CA_CERT).exists() and (ca_dir / CA_KEY).exists():
        return load_ca((ca_dir / CA_CERT).read_bytes(), (ca_dir / CA_KEY).read_bytes())
    return None


def _bytes(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return data.strip() + b"\n"


def _leaf(ca: StageCA, subject: x509.Name, public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
          sans: list[x509.GeneralName] | None, usages: list[x509.ObjectIdentifier], days: int) -> bytes:
    """An end-entity certificate signed by the CA (CA:FALSE, the given extendedKeyUsage, SANs when any)."""
    now = _now()
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.cert.subject).public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                              critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


SERVER_USAGES = [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]


def sign_csr(ca: StageCA, csr_pem: bytes, host: HostIdentity, days: int = CERT_DAYS) -> bytes:
    """Sign a host's CSR; only its subject and public key are taken, SANs and usages come from the inventory."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as e:
        raise CAError(f"{host.name}: cannot read the CSR: {e}") from e
    if not csr.is_signature_valid:
        raise CAError(f"{host.name}: the CSR signature is not valid")
    public_key = csr.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise CAError(f"{host.name}: the CSR key must be RSA or EC")
    return _leaf(ca, csr.subject, public_key, host.sans(), SERVER_USAGES, days)


def csr_matches_key(csr_pem: bytes, public_key_pem: bytes) -> bool:
    """The CSR carries the host key's public half (a stale CSR left from an older key must not be signed)."""
    try:
        csr_pub = _public_pem(x509.load_pem_x509_csr(csr_pem).public_key())
        return csr_pub == _public_pem(serialization.load_pem_public_key(public_key_pem))
    except ValueError as e:
        raise CAError(f"cannot read the CSR or the host public key: {e}") from e


def _signed_by(cert: x509.Certificate, ca: StageCA) -> bool:
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _public_pem(key: object) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,  # type: ignore[attr-defined]
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def cert_problem(cert_pem: bytes | None, ca: StageCA, public_key_pem: bytes | None,
                 host: HostIdentity | None, usages: list[x509.ObjectIdentifier] = SERVER_USAGES) -> str:
    """Why an installed certificate must be signed again ("" when it is fine): missing, unreadable, another CA,
    another key, other SANs or usages, or near its end."""
    if not cert_pem:
        return "no certificate installed"
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        return "installed certificate is unreadable"
    if not _signed_by(cert, ca):
        return "installed certificate is not signed by the stage CA"
    if public_key_pem is not None:
        try:
            wanted = _public_pem(serialization.load_pem_public_key(public_key_pem))
        except ValueError:
            return "host key is unreadable"
        if _public_pem(cert.public_key()) != wanted:
            return "installed certificate does not match the host key"
    try:
        ekus = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        sans = list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value) if host else []
    except x509.ExtensionNotFound:
        return "installed certificate lacks subjectAltName or extendedKeyUsage"
    if host is not None and set(sans) != set(host.sans()):
        return "installed certificate has other subjectAltNames"
    if set(ekus) != set(usages):
        return "installed certificate has other extendedKeyUsage"
    now = _now()
    if cert.not_valid_before_utc > now:  # signed under a clock that was ahead: TLS peers refuse it until then
        return (f"installed certificate is not valid yet (notBefore {_utc(cert.not_valid_before_utc)}, "
                f"now {_utc(now)} on the controller)")
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return "installed certificate expires soon"
    return ""


def ca_problem(ca: StageCA) -> str:
    """Why the stage CA cannot sign usable certificates now ("" when it can): a CA that is not valid yet (made
    under a clock that was ahead, or this controller's clock is behind) makes every chain fail until then, and
    signing again cannot help."""
    now = _now()
    if ca.cert.not_valid_before_utc > now:
        return (f"the stage CA is not valid before {_utc(ca.cert.not_valid_before_utc)} (now {_utc(now)} on the "
                "controller): a clock was ahead when it was made, or this controller's clock is behind. Fix the "
                "clock; or, to start over, move the stage's ca/ directory away (every host is signed again)")
    if ca.cert.not_valid_after_utc <= now:
        return f"the stage CA expired at {_utc(ca.cert.not_valid_after_utc)}"
    return ""


def _utc(moment: datetime.datetime) -> str:
    """A timestamp as people read it in an error message."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class ClientFiles:
    """The docker SDK's TLS files on the controller."""

    ca: Path
    cert: Path
    key: Path


def ensure_docker_client(context_dir: Path, ca: StageCA, common_name: str) -> tuple[ClientFiles, bool]:
    """`.hive/<stage>/docker-client/{ca,cert,key}.pem`: the controller's own client key (0600) and a clientAuth
    certificate from the stage CA; kept while it still fits the CA. Returns (paths, changed)."""
    d = controller_docker_client_dir(context_dir)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = ClientFiles(d / "ca.pem", d / "cert.pem", d / "key.pem")
    changed = _write(files.ca, ca.cert_pem, 0o644)
    key_pem = files.key.read_bytes() if files.key.exists() else None
    cert_pem = files.cert.read_bytes() if files.cert.exists() else None
    public = None
    if key_pem:
        try:
            public = _public_pem(serialization.load_pem_private_key(key_pem, password=None).public_key())
        except ValueError:
            key_pem = None
    client_usage = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if key_pem and public and not cert_problem(cert_pem, ca, public, None, client_usage):
        if files.key.stat().st_mode & 0o777 != 0o600:
            files.key.chmod(0o600)
        return files, changed
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = _leaf(ca, subject, key.public_key(), None, client_usage, CERT_DAYS)
    _write(files.key, _key_pem(key), 0o600)
    _write(files.cert, cert, 0o644)
    return files, True


def docker_client_state(context_dir: Path, ca: StageCA | None) -> str:
    """What ensure_docker_client would do, without writing (check mode): "" when nothing."""
    d = controller_docker_client_dir(context_dir)
    if ca is None:
        return f"create {d} (after the stage CA is created)"
    files = ClientFiles(d / "ca.pem", d / "cert.pem", d / "key.pem")
    if not files.ca.exists() or files.ca.read_bytes() != ca.cert_pem:
        return f"write {files.ca}"
    if not files.key.exists():
        return f"create {files.key} and {files.cert}"
    try:
        public = _public_pem(serialization.load_pem_private_key(files.key.read_bytes(), password=None).public_key())
    except ValueError:
        return f"replace unreadable {files.key}"
    cert = files.cert.read_bytes() if files.cert.exists() else None
    problem = cert_problem(cert, ca, public, None, [ExtendedKeyUsageOID.CLIENT_AUTH])
    return f"sign {files.cert}: {problem}" if problem else ""
