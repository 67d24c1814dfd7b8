"""Shared provider pieces: host plan, stage key pair, known_hosts and state.json (docs/architecture.md)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_nornir.inventory import build_inventory

Log = Callable[[str], None]
KEY_NAME = "id_ed25519"

if TYPE_CHECKING:  # paramiko is imported where a host is dialled, not when the CLI starts
    import paramiko


class ProviderError(RuntimeError):
    """build-infra could not bring the stage up; the message names the host and the cause."""


class NotOurs(ProviderError):
    """The stage's names are taken by resources another checkout (or an older hive_nornir) made; nothing changed."""


def nolog(msg: str) -> None:
    """Default logger: library use stays silent."""


@dataclass(frozen=True)
class HostPlan:
    """What a provider needs to know about one server of the stage."""

    name: str          # inventory name, e.g. p-hive0.pdns
    short: str         # p-hive0: container suffix and hostname
    private_ip: str
    user: str          # hive_admin
    data: dict[str, Any]


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """Read a site/stage field whether the Site model exposes it as attribute or in its raw dict."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    val = getattr(obj, key, None)
    if val is not None:
        return val
    raw = getattr(obj, "raw", None)
    if isinstance(raw, dict):
        return raw.get(key, default)
    return default


def site_name(site: Any) -> str:
    """The site's `name` (hive-builder `name:` key), used in network and container names."""
    name = _get(site, "name")
    if not name:
        raise ProviderError("site has no name; set `name:` in inventory/hive.yml")
    return str(name)


def stage_of(site: Any, stage: str) -> Any:
    """The Stage object, with an error that lists the stages the site defines."""
    stages = _get(site, "stages") or {}
    if stage not in stages:
        defined = ", ".join(stages) or "none"
        raise ProviderError(f"stage {stage!r} is not defined in the site (defined: {defined})")
    return stages[stage]


def stage_cidr(site: Any, stage: str) -> str:
    """The stage network cidr (hive-builder `cidr`)."""
    cidr = _get(stage_of(site, stage), "cidr")
    if not cidr:
        raise ProviderError(f"stage {stage!r} has no cidr")
    return str(ipaddress.ip_network(str(cidr), strict=False))


def _host_value(host: Any, key: str, default: Any = None) -> Any:
    """A nornir Host variable with group/defaults inheritance (Host.get resolves it)."""
    try:
        val = host.get(key, default)
    except (KeyError, AttributeError):
        return default
    return default if val is None else val


def plan_hosts(site: Any, stage: str) -> list[HostPlan]:
    """Server names and private IPs from the inventory, so the provider and inventory never disagree."""
    inv = build_inventory(site, stage, None)
    plans = []
    for name, host in inv.hosts.items():
        ip = _host_value(host, "hive_private_ip")
        if not ip:
            raise ProviderError(f"{name}: inventory gives no hive_private_ip")
        data = {k: _host_value(host, k) for k in ("hive_ssh_host", "ansible_host", "hive_sshd_port", "hive_ssh_config")}
        plans.append(HostPlan(name=name, short=name.split(".", 1)[0], private_ip=str(ip),
                              user=str(_host_value(host, "hive_admin", "admin")), data=data))
    return plans


# --- stage context dir ---------------------------------------------------------------------------

def ensure_context_dir(context_dir: Path) -> Path:
    """Create <root>/.hive/<stage>/ with mode 0700 because it holds the private key."""
    context_dir.mkdir(parents=True, exist_ok=True)
    context_dir.chmod(0o700)
    return context_dir


def ensure_keypair(context_dir: Path, comment: str, log: Log = nolog) -> bool:
    """Create the stage ed25519 key pair if absent; True when it was created."""
    priv = context_dir / KEY_NAME
    pub = context_dir / f"{KEY_NAME}.pub"
    if priv.exists() and pub.exists():
        if priv.stat().st_mode & 0o077:
            priv.chmod(0o600)
        return False
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption())
    openssh_pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                serialization.PublicFormat.OpenSSH)
    fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub.write_bytes(openssh_pub + b" " + comment.encode() + b"\n")
    log(f"created stage key pair {priv}")
    return True


def public_key(context_dir: Path) -> str:
    """The stage public key line (authorized_keys format)."""
    return (context_dir / f"{KEY_NAME}.pub").read_text().strip()


def load_pkey(context_dir: Path) -> paramiko.PKey:
    """The stage private key for paramiko."""
    import paramiko

    return paramiko.Ed25519Key.from_private_key_file(str(context_dir / KEY_NAME))


# --- known_hosts ------------------------------------------------------------------------------------

def known_hosts_name(address: str, port: int) -> str:
    """OpenSSH's host pattern: bare address for port 22, else [address]:port."""
    return address if port == 22 else f"[{address}]:{port}"


def read_known_hosts(path: Path) -> list[str]:
    """Lines of the known_hosts file (empty list when absent)."""
    return path.read_text().splitlines() if path.exists() else []


def _atomic_write(path: Path, text: str, mode: int = 0o600) -> None:
    """Write via a temp file in the same dir and rename, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise


def update_known_hosts(path: Path, set_entries: dict[str, str], remove: Iterable[str] = ()) -> bool:
    """Set `pattern -> "keytype base64"` entries (replacing stale ones) and drop patterns; True if changed."""
    drop = set(remove) | set(set_entries)
    old = read_known_hosts(path)
    kept = [ln for ln in old if not ln.strip() or ln.split(None, 1)[0] not in drop]
    new = kept + [f"{pat} {key}" for pat, key in set_entries.items()]
    new = [ln for ln in new if ln.strip()]
    if new == [ln for ln in old if ln.strip()]:
        return False
    _atomic_write(path, "".join(ln + "\n" for ln in new), 0o600)
    return True


def known_host_key(path: Path, pattern: str) -> str | None:
    """The recorded "keytype base64" for a pattern, if any."""
    for ln in read_known_hosts(path):
        parts = ln.split()
        if len(parts) >= 3 and parts[0] == pattern:
            return f"{parts[1]} {parts[2]}"
    return None


def key_fingerprint(hostkey: str) -> str:
    """`type SHA256:...` of a "type base64" key, as `ssh-keygen -l` prints it."""
    keytype, _, b64 = hostkey.partition(" ")
    try:
        blob = base64.b64decode(b64.split()[0] if b64 else "", validate=True)
    except (ValueError, IndexError):
        return f"{keytype} (unreadable key)"
    return f"{keytype} SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def judge_host_key(name: str, pattern: str, recorded: str | None, seen: str, kh_path: Path,
                   rekey: Iterable[str] = ()) -> tuple[str, str | None, str | None]:
    """A host key is never silently replaced: (key to record, action or None, refusal or None).

    `recorded` is what this stage knows about the host; a different key is refused unless the host is named in
    `rekey` (build-infra --rekey HOST), and then the old identity is replaced and the change reported.
    """
    if recorded is None or recorded == seen:
        return seen, (None if recorded else "host_key_recorded"), None
    if name in set(rekey):
        return seen, "rekeyed", None
    short = name.split(".", 1)[0]
    return recorded, None, (
        f"{name}: host key changed for {pattern}: {kh_path} records {key_fingerprint(recorded)}, the host now "
        f"shows {key_fingerprint(seen)}; refused (the recorded key is kept). If this host's keys were really "
        f"regenerated, accept the new key with `build-infra --rekey {short}`")


# --- SSH probing --------------------------------------------------------------------------------------

def probe_ssh(address: str, port: int, user: str | None, pkey: paramiko.PKey | None,
              timeout: float = 5.0) -> tuple[str, str | None]:
    """Connect once: return the host key ("type base64") and an auth error (None: auth worked or skipped)."""
    import paramiko

    sock = socket.create_connection((address, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = paramiko.Transport(sock)
    try:
        t.banner_timeout = timeout
        t.start_client(timeout=timeout)
        key = t.get_remote_server_key()
        hostkey = f"{key.get_name()} {base64.b64encode(key.asbytes()).decode()}"
        err = None
        if user is not None and pkey is not None:
            try:
                t.auth_publickey(user, pkey)
            except paramiko.SSHException as e:
                err = f"public key authentication as {user} failed: {e}"
        return hostkey, err
    finally:
        t.close()


def banner_ready(address: str, port: int, timeout: float = 3.0) -> bool:
    """True once sshd sends its banner; a plain socket, so paramiko logs no resets while hosts boot."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def wait_for_ssh(address: str, port: int, user: str, pkey: paramiko.PKey, deadline: float,
                 label: str) -> str:
    """Poll until sshd answers and accepts the key (bounded by deadline); return the host key."""
    import paramiko

    last = "no attempt"
    attempts = 0
    while attempts < 2000:
        attempts += 1
        if not banner_ready(address, port):
            last = "no SSH banner yet"
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
            continue
        try:
            hostkey, err = probe_ssh(address, port, user, pkey, timeout=3.0)
            if err is None:
                return hostkey
            last = err
        except (OSError, paramiko.SSHException, EOFError) as e:
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    raise ProviderError(f"{label}: ssh on {address}:{port} not ready after {attempts} attempts: {last}")


# --- state.json ---------------------------------------------------------------------------------------

def read_state(context_dir: Path) -> dict[str, Any]:
    """The stage state written by the last build (empty dict when none)."""
    p = context_dir / "state.json"
    if not p.exists():
        return {}
    data = json.loads(p.read_text())
    return data if isinstance(data, dict) else {}


def write_state(context_dir: Path, state: dict[str, Any]) -> bool:
    """Write state.json atomically; True when the content changed."""
    text = json.dumps(state, indent=2, sort_keys=False) + "\n"
    p = context_dir / "state.json"
    if p.exists() and p.read_text() == text:
        return False
    _atomic_write(p, text, 0o600)
    return True


def run(cmd: list[str], stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a local command without a shell; stdin carries anything sensitive, never argv."""
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
