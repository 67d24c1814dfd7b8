"""Where the stage CA and each host's TLS files live, on the controller and on the hosts (one contract)."""

from __future__ import annotations

from pathlib import Path

from hive_nornir.facts import Facts

TLS_DIR = "/etc/pki/tls"  # hive-builder's hive_safe_tls_dir, kept on both families so sites port unchanged


def host_key_path(host: str) -> str:
    """The host's private key: made on the host, never copied off it."""
    return f"{TLS_DIR}/private/{host}_key.pem"


def host_csr_path(host: str) -> str:
    """The CSR the controller reads and signs."""
    return f"{TLS_DIR}/misc/{host}.csr"


def host_cert_path(host: str) -> str:
    """The certificate signed by the stage CA (SANs: DNS host name, IP private address, IP 127.0.0.1)."""
    return f"{TLS_DIR}/certs/{host}_cert.pem"


def ca_anchor_path(facts: Facts) -> str:
    """The CA in the system trust store: ca-trust anchors on EL, ca-certificates on Debian (.crt required)."""
    if facts.is_redhat:
        return "/etc/pki/ca-trust/source/anchors/cacert.pem"
    return "/usr/local/share/ca-certificates/hive-cacert.crt"


def ca_trust_update_command(facts: Facts) -> str:
    """Rebuild the system trust store after the anchor changed."""
    return "update-ca-trust" if facts.is_redhat else "update-ca-certificates"


def controller_ca_dir(context_dir: Path) -> Path:
    """`.hive/<stage>/ca/`: cacert.pem (shareable), cakey.pem (0600), cacert.srl."""
    return context_dir / "ca"


def controller_docker_client_dir(context_dir: Path) -> Path:
    """`.hive/<stage>/docker-client/`: ca.pem, cert.pem, key.pem for the docker SDK on the controller."""
    return context_dir / "docker-client"
