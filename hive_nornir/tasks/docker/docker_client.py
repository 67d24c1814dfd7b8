"""docker-client: TLS client files for the docker CLI/SDK: the admin's ~/.docker on each host (copied on the host
from its own key and cert, as hive-builder does) and `.hive/<stage>/docker-client/` on the controller."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_nornir.ca import CAError, docker_client_state, ensure_docker_client, existing_ca
from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.pki_paths import ca_anchor_path, controller_docker_client_dir, host_cert_path, host_key_path
from hive_nornir.primitives.base import Primitive, q
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.primitives.probes import argv, stat_is

if TYPE_CHECKING:
    import docker

CLIENT_SHARED = "docker-client:controller"  # ctx.shared key: the controller files are handled once per run


@dataclass(frozen=True)
class Account:
    """The admin user as the host knows it: numeric ids (chown needs no name lookup) and home."""

    name: str
    uid: str
    gid: str
    home: str


def parse_passwd(line: str) -> Account:
    """One `getent passwd` line: name:x:uid:gid:gecos:home:shell."""
    fields = line.strip().split(":")
    if len(fields) < 7:
        raise StepFailed(f"unexpected passwd entry: {line.strip()!r}")
    return Account(fields[0], fields[2], fields[3], fields[5])


def copy_on_host(src: str, dst: str, mode: str, uid: str, gid: str) -> Command:
    """Copy a file that already lives on the host (the key never travels); a no-op when content and mode match."""
    return Command(args=["install", "-m", mode, "-o", uid, "-g", gid, src, dst],
                   unless=f"{argv('cmp', '-s', src, dst)} && {stat_is(dst, mode, uid, gid, by_number=True)}")


def client_primitives(facts: Facts, host: str, account: Account) -> list[Primitive]:
    """~/.docker (0700) with ca.pem, cert.pem (0644) and key.pem (0600), all owned by the admin."""
    d = f"{account.home.rstrip('/')}/.docker"
    uid, gid = account.uid, account.gid
    return [
        Directory(path=d, mode="0700", owner=uid, group=gid),
        copy_on_host(ca_anchor_path(facts), f"{d}/ca.pem", "0644", uid, gid),
        copy_on_host(host_cert_path(host), f"{d}/cert.pem", "0644", uid, gid),
        copy_on_host(host_key_path(host), f"{d}/key.pem", "0600", uid, gid),
    ]


def lookup_script(admin: str, sources: tuple[str, ...]) -> str:
    """One read: the admin's passwd entry, then `sources=yes` when every file to copy is there."""
    present = " && ".join(f"[ -f {q(p)} ]" for p in sources)
    return f"getent passwd {q(admin)}; if {present}; then echo sources=yes; else echo sources=no; fi"


def controller_files(ctx: TaskContext) -> None:
    """Once per run: the controller's client key and cert from the stage CA (check mode: only report)."""
    context_dir = ctx.context_dir
    if context_dir is None:
        raise StepFailed("docker-client needs the stage context directory (.hive/<stage>)")
    with ctx.lock:
        if ctx.shared.get(CLIENT_SHARED):
            return
        ctx.shared[CLIENT_SHARED] = True
        try:
            ca = existing_ca(context_dir, ctx.var("hive_ca_cert"), ctx.var("hive_ca_key"))
            if ctx.check:
                todo = docker_client_state(context_dir, ca)
                if todo:
                    ctx.changed("docker-client[controller]", todo)
                return
            if ca is None:
                raise StepFailed("no stage CA yet: run the tls-certificate step first")
            name = str(ctx.var("hive_name") or "hive")
            _, changed = ensure_docker_client(context_dir, ca, f"docker-client.{name}")
        except CAError as e:
            raise StepFailed(f"stage CA: {e}") from e
        if changed:
            ctx.changed("docker-client[controller]", f"write {controller_docker_client_dir(context_dir)}")


def docker_client(ctx: TaskContext) -> None:
    """The controller's files, then the admin's ~/.docker on this host from its tls-certificate files."""
    controller_files(ctx)
    facts, host = ctx.facts, ctx.name
    admin = str(ctx.var("hive_admin") or ctx.host.username or "admin")
    sources = (ca_anchor_path(facts), host_cert_path(host), host_key_path(host))
    found = ctx.run(lookup_script(admin, sources), check=False).stdout
    entry, _, have = found.rpartition("sources=")
    if not entry.strip():
        raise StepFailed(f"admin user {admin!r} does not exist on {host}")
    if not ctx.check and have.strip() != "yes":
        raise StepFailed(f"{host}: {', '.join(sources)} must exist: run the tls-certificate step first")
    ctx.ensure(client_primitives(facts, host, parse_passwd(entry)))


@functools.cache
def _stage_api_client_class() -> type[docker.APIClient]:
    """Built on first use: the docker SDK (and requests, paramiko under it) loads only when a client is made."""
    import docker

    class _StageAPIClient(docker.APIClient):
        """requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace a session's CA and routes via env proxies: an
        engine's TLS port must be verified against the stage CA only, reached directly."""

        @property
        def trust_env(self) -> bool:
            """Never take CA bundles or proxies from the environment."""
            return False

        @trust_env.setter
        def trust_env(self, value: bool) -> None:
            """requests.Session.__init__ sets it; ignored on purpose."""

    return _StageAPIClient


def stage_docker_client(context_dir: Path, base_url: str, **kwargs: Any) -> docker.DockerClient:
    """A docker SDK client for an engine's TLS port (`tcp://127.0.0.1:<port>`) with the controller's stage files."""
    import docker
    import docker.tls

    d = controller_docker_client_dir(context_dir)
    tls = docker.tls.TLSConfig(client_cert=(str(d / "cert.pem"), str(d / "key.pem")), ca_cert=str(d / "ca.pem"),
                               verify=True)
    client = docker.DockerClient.__new__(docker.DockerClient)
    client.api = _stage_api_client_class()(base_url=base_url, tls=tls, **kwargs)
    return client
