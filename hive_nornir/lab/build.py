"""Build the lab host image locally: no registry is reachable, only the Debian mirror."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

BASE_TAG = "hive-nornir-base:bookworm"
HOST_TAG = "hive-nornir-host:bookworm"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
IMAGE_DIR = Path(__file__).parent / "image"
HASH_LABEL = "hive_nornir.image_hash"

Log = Callable[[str], None]


class LabImageError(RuntimeError):
    """The lab image could not be built; the message says which step failed and why."""


def _nolog(msg: str) -> None:
    """Default logger: stay quiet so library use does not print."""


def image_hash() -> str:
    """Hash of the image build files, so a changed Dockerfile triggers a rebuild."""
    h = hashlib.sha256()
    for p in sorted(IMAGE_DIR.iterdir()):
        if p.is_file():
            h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def debian_mirror(sources: tuple[Path, ...] = (Path("/etc/apt/sources.list"),),
                  sources_dir: Path = Path("/etc/apt/sources.list.d")) -> str:
    """The Debian mirror this machine's apt uses, because it is the one known to be reachable."""
    files = [p for p in sources if p.is_file()]
    if sources_dir.is_dir():
        files += sorted(p for p in sources_dir.iterdir() if p.suffix in (".list", ".sources"))
    for p in files:
        text = p.read_text(errors="replace")
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("#"):
                continue
            m = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and not m.group(2).endswith(("-security", "/updates")):
                return m.group(1).rstrip("/")
            m = re.match(r"^URIs:\s*(\S+)", line)
            if m and "security" not in m.group(1):
                return m.group(1).rstrip("/")
    return DEFAULT_MIRROR


def docker_client() -> docker.DockerClient:
    """A docker client, with an error that says what to check when the engine is down."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as e:
        raise LabImageError(f"docker engine not reachable ({e}); is dockerd running?") from e
    return client


def _has_image(client: docker.DockerClient, tag: str) -> bool:
    """True when the tag exists locally (we never pull implicitly)."""
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def _try_pull(client: docker.DockerClient, ref: str, log: Log) -> bool:
    """Pull ref if a registry answers; on these machines none does, so failure is normal."""
    try:
        client.images.pull(ref)
    except docker.errors.DockerException as e:
        log(f"lab image: cannot pull {ref}: {str(e).splitlines()[0][:200]}")
        return False
    return True


def build_base(client: docker.DockerClient, tag: str, log: Log) -> None:
    """Create the base image with debootstrap + docker import, because no registry is reachable."""
    if shutil.which("debootstrap") is None:
        raise LabImageError("debootstrap is not installed (apt-get install debootstrap)")
    mirror = debian_mirror()
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="hive-nornir-debootstrap-", dir="/var/tmp"))
    try:
        root = tmp / "rootfs"
        log(f"lab image: debootstrap --variant=minbase {SUITE} from {mirror}")
        r = subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(root), mirror],
                           capture_output=True, text=True, timeout=1800, check=False)
        if r.returncode != 0:
            tail = (r.stdout + r.stderr).strip().splitlines()[-15:]
            raise LabImageError("debootstrap failed:\n" + "\n".join(tail))
        (root / "etc/apt/sources.list").write_text(f"deb {mirror} {SUITE} main\n")
        log(f"lab image: debootstrap done in {time.monotonic() - t0:.1f} s; importing as {tag}")
        tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE)
        imp = subprocess.run(["docker", "import", "-", tag], stdin=tar.stdout,
                             capture_output=True, text=True, timeout=900, check=False)
        if tar.stdout is not None:
            tar.stdout.close()
        tar_rc = tar.wait(timeout=60)
        if tar_rc != 0 or imp.returncode != 0:
            raise LabImageError(f"docker import failed (tar rc={tar_rc}): {imp.stderr.strip()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"lab image: base {tag} ready in {time.monotonic() - t0:.1f} s")


def build_host(client: docker.DockerClient, base: str, tag: str, log: Log) -> None:
    """Build the host image from the packaged Dockerfile with the classic builder (no buildkit needed)."""
    t0 = time.monotonic()
    log(f"lab image: building {tag} FROM {base}")
    last: list[str] = []
    try:
        for chunk in client.api.build(path=str(IMAGE_DIR), tag=tag, buildargs={"BASE": base}, rm=True,
                                      forcerm=True, decode=True, labels={HASH_LABEL: image_hash()}):
            if "error" in chunk:
                raise LabImageError(f"docker build of {tag} failed: {chunk['error'].strip()}\n"
                                    + "".join(last[-15:]))
            line = chunk.get("stream")
            if isinstance(line, str):
                last.append(line)
                if line.startswith("Step "):
                    log(f"lab image: {line.strip()}")
    except docker.errors.DockerException as e:
        raise LabImageError(f"docker build of {tag} failed: {e}") from e
    log(f"lab image: {tag} built in {time.monotonic() - t0:.1f} s")


def ensure_image(base_image: str | None = None, tag: str = HOST_TAG, log: Log = _nolog) -> str:
    """Return the host image tag, building base and host image only when absent or outdated."""
    client = docker_client()
    want = image_hash()
    if _has_image(client, tag):
        labels = client.images.get(tag).labels or {}
        if labels.get(HASH_LABEL) == want:
            log(f"lab image: {tag} is up to date")
            return tag
        log(f"lab image: {tag} was built from other build files; rebuilding")
    t0 = time.monotonic()
    base = BASE_TAG
    if base_image and (_has_image(client, base_image) or _try_pull(client, base_image, log)):
        base = base_image
        log(f"lab image: using base {base}")
    elif not _has_image(client, BASE_TAG):
        build_base(client, BASE_TAG, log)
    build_host(client, base, tag, log)
    log(f"lab image: total build time {time.monotonic() - t0:.1f} s")
    return tag


def default_base_image() -> str | None:
    """Base image named by the environment (HIVE_LAB_BASE_IMAGE), for machines that have one."""
    return os.environ.get("HIVE_LAB_BASE_IMAGE") or None
