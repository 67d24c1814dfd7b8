"""OpenSSH known_hosts: lookup with line numbers (for readable errors) and thread/process-safe accept-new."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko

_PATH_LOCKS: dict[str, threading.Lock] = {}
_PATH_LOCKS_GUARD = threading.Lock()

# key types a server may offer for a recorded key type (RSA keys sign with SHA-2 variants)
_NEGOTIATED_TYPES: dict[str, tuple[str, ...]] = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
}


def host_entry(host: str, port: int) -> str:
    """The name OpenSSH records: `host` on port 22, `[host]:port` otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(key: paramiko.PKey) -> str:
    """SHA256 fingerprint exactly as `ssh-keygen -l` / OpenSSH print it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class KnownKey:
    """One known_hosts line matching a host: where it is, its type and key blob."""

    lineno: int
    keytype: str
    blob: bytes

    @property
    def fingerprint(self) -> str:
        """SHA256 fingerprint of the recorded key, for the HostKeyChanged message."""
        return "SHA256:" + base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")


def _pattern_matches(pattern: str, entry: str) -> bool:
    """Match one hostname field item: hashed `|1|salt|hash` or a glob pattern."""
    if pattern.startswith("|1|"):
        try:
            _, _, salt_b64, hash_b64 = pattern.split("|")
            salt = base64.b64decode(salt_b64)
            want = base64.b64decode(hash_b64)
        except ValueError:
            return False
        got = hmac.new(salt, entry.encode(), hashlib.sha1).digest()
        return hmac.compare_digest(got, want)
    if "*" not in pattern and "?" not in pattern:
        return pattern == entry  # the common case; `[host]:port` must not be read as a glob class
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, entry) is not None


def _hosts_match(field: str, entry: str) -> bool:
    """OpenSSH semantics: any positive match and no negated (`!pattern`) match."""
    matched = False
    for pat in field.split(","):
        if pat.startswith("!"):
            if _pattern_matches(pat[1:], entry):
                return False
        elif _pattern_matches(pat, entry):
            matched = True
    return matched


class KnownHosts:
    """A known_hosts file; reads are fresh each time so entries added by other threads are seen."""

    def __init__(self, path: str) -> None:
        self.path = str(Path(path).expanduser().absolute())

    def lookup(self, host: str, port: int) -> list[KnownKey]:
        """All plain (non-@cert-authority, non-@revoked) keys recorded for host:port, with line numbers."""
        entry = host_entry(host, port)
        found: list[KnownKey] = []
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                lines = fh.read().splitlines()
        except FileNotFoundError:
            return found
        for lineno, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line.startswith("#") or line.startswith("@"):
                continue
            parts = line.split()
            if len(parts) < 3 or not _hosts_match(parts[0], entry):
                continue
            try:
                blob = base64.b64decode(parts[2], validate=True)
            except ValueError:
                continue
            found.append(KnownKey(lineno, parts[1], blob))
        return found

    def preferred_key_types(self, host: str, port: int) -> tuple[str, ...]:
        """Host key algorithms to offer first so a genuine host shows the recorded type."""
        types: list[str] = []
        for known in self.lookup(host, port):
            for t in _NEGOTIATED_TYPES.get(known.keytype, (known.keytype,)):
                if t not in types:
                    types.append(t)
        return tuple(types)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise writers: a per-path thread lock plus flock on a sidecar file for other processes."""
        with _PATH_LOCKS_GUARD:
            lock = _PATH_LOCKS.setdefault(self.path, threading.Lock())
        with lock:
            Path(self.path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def add(self, host: str, port: int, key: paramiko.PKey) -> list[KnownKey]:
        """Record key for host:port unless another writer did; returns the entries seen under the lock.

        The caller re-checks the returned entries: a concurrent writer may have recorded a different key.
        """
        with self._locked():
            existing = self.lookup(host, port)
            if any(k.keytype == key.get_name() for k in existing):
                return existing
            try:
                with open(self.path, "rb") as fh:
                    content = fh.read()
                mode = Path(self.path).stat().st_mode & 0o777
            except FileNotFoundError:
                content, mode = b"", 0o600
            if content and not content.endswith(b"\n"):
                content += b"\n"
            line = f"{host_entry(host, port)} {key.get_name()} {key.get_base64()}\n"
            fd, tmp = tempfile.mkstemp(prefix=".known_hosts.", dir=Path(self.path).parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(content + line.encode())
                    out.flush()
                    os.fsync(out.fileno())
                Path(tmp).chmod(mode)
                Path(tmp).replace(self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    Path(tmp).unlink()
                raise
            return self.lookup(host, port)
