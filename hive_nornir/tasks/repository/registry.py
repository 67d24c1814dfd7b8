"""registry (repository): a private image registry behind htpasswd auth and the stage CA's TLS.

Debian runs the distribution registry v2 from the `docker-registry` package as a systemd service (no container
registry is reachable to pull `registry:2`); EL keeps hive-builder's `~/registry/docker-compose.yml` of `registry:2`.
The htpasswd password is the stage secret `.hive/<stage>/registry_password`; it only ever travels on stdin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.netslice import slice_internal_cidr
from hive_nornir.pki_paths import TLS_DIR, ca_anchor_path, host_cert_path, host_key_path
from hive_nornir.primitives.base import Primitive, q
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File, Template, render
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.primitives.lines import BlockInFile
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.probes import argv, stat_is
from hive_nornir.primitives.service import Service, restart_handler
from hive_nornir.stage_secrets import stage_secret
from hive_nornir.tasks.net.firewall import rule_set_for

PASSWORD_FILE = "registry_password"  # noqa: S105 - a file name, not a password
PASSWORD_LENGTH = 20  # hive-builder uses 15; longer costs nothing
DEFAULT_USER = "hive"
DEFAULT_PORT = 5000

DEB_SERVICE = "docker-registry"
DEB_CONFIG = "/etc/docker/registry/config.yml"
DEB_HTPASSWD = "/etc/docker/registry/htpasswd"
DEB_DATA_DIR = "/var/lib/docker-registry"
DEB_DROPIN_DIR = "/etc/systemd/system/docker-registry.service.d"
DEB_DROPIN = f"{DEB_DROPIN_DIR}/hive-tls.conf"
DEB_RUNTIME_KEY = "/run/docker-registry/tls-key.pem"  # the service user's copy of the host key, on tmpfs
DEB_TLS_SUM = "/etc/docker/registry/tls.sha256"  # cert and key the running registry was (re)started with

DXF_ENV = ".dxf_env"  # in the admin's home, 0600

EL_IMAGE = "registry:2"
EL_SERVICE = "registry_server"  # compose service name hive-builder's backup script execs into
EL_DATA_DIR = "/var/lib/registry"  # inside the container (volume regdata)


@dataclass(frozen=True)
class RegistrySpec:
    """What the registry looks like on one host, from facts and site variables."""

    host: str
    port: int = DEFAULT_PORT
    user: str = DEFAULT_USER
    admin: str = "admin"
    home: str = "/home/admin"
    internal_cidr: str | None = None

    @property
    def cert(self) -> str:
        """The host certificate signed by the stage CA."""
        return host_cert_path(self.host)

    @property
    def key(self) -> str:
        """The host private key (root only; never copied off the host)."""
        return host_key_path(self.host)

    @property
    def compose_dir(self) -> str:
        """hive-builder's `~/registry`: compose file and htpasswd (EL)."""
        return f"{self.home}/registry"


def registry_subnet(internal_cidr: str | None) -> str | None:
    """hive-builder's registry_default slice (hive_nornir.netslice: 172.31.252.0/22 -> 172.31.255.0/25)."""
    return slice_internal_cidr(internal_cidr).registry_default


def htpasswd_path(facts: Facts, spec: RegistrySpec) -> str:
    """Debian: next to the package's config; EL: `~/registry/htpasswd`, mounted at /auth in the container."""
    return DEB_HTPASSWD if facts.is_debian else f"{spec.compose_dir}/htpasswd"


def data_dir(facts: Facts) -> str:
    """Where the registry keeps blobs: what the backup script tars."""
    return DEB_DATA_DIR if facts.is_debian else EL_DATA_DIR


def packages(facts: Facts) -> list[str]:
    """The registry itself (Debian) and htpasswd (apache2-utils / httpd-tools)."""
    return [DEB_SERVICE, "apache2-utils"] if facts.is_debian else ["httpd-tools"]


def deb_config(spec: RegistrySpec) -> str:
    """/etc/docker/registry/config.yml: hive-builder's compose environment spelled as the registry's config."""
    return render("repository/registry-config.yml.j2", port=spec.port, data_dir=DEB_DATA_DIR, htpasswd=DEB_HTPASSWD,
                  cert=spec.cert, key=DEB_RUNTIME_KEY)


def deb_dropin(spec: RegistrySpec) -> str:
    """The service runs as docker-registry; systemd copies the root-only host key to its private tmpfs dir."""
    return render("repository/registry-tls.conf.j2", key=spec.key, runtime_key=DEB_RUNTIME_KEY,
                  service_user=DEB_SERVICE)


def compose_vars(spec: RegistrySpec) -> dict[str, object]:
    """EL compose file variables: cert paths as the container sees /etc/pki/tls mounted at /certs."""
    rel = len(TLS_DIR) + 1
    return {"image": EL_IMAGE, "service": EL_SERVICE, "port": spec.port, "auth_dir": spec.compose_dir,
            "tls_dir": TLS_DIR, "cert": f"/certs/{spec.cert[rel:]}", "key": f"/certs/{spec.key[rel:]}",
            "subnet": registry_subnet(spec.internal_cidr)}


def daemon_reload_if_needed(*units: str, dropin: str | None = None) -> Command:
    """Reload systemd inside the step when a loaded unit is stale, or (first unit) does not use `dropin` yet.

    NeedDaemonReload misses a drop-in directory that did not exist when the unit was loaded, hence the second check.
    """
    names = " ".join(q(u) for u in units)
    stale = f"systemctl show -p NeedDaemonReload -- {names} | grep -qx NeedDaemonReload=yes"
    if dropin:
        stale += f" || ! systemctl show -p DropInPaths -- {q(units[0])} | grep -qF {q(dropin)}"
    return Command(cmd="systemctl daemon-reload", onlyif=stale)


def deb_primitives(facts: Facts, spec: RegistrySpec) -> list[Primitive]:
    """Package, TLS drop-in, config, an empty htpasswd owned for the service, enabled service."""
    restart = restart_handler(DEB_SERVICE)
    return [
        Packages(names=packages(facts)),
        Directory(path=DEB_DROPIN_DIR, mode="0755"),
        File(path=DEB_DROPIN, content=deb_dropin(spec)).with_notify(restart),
        daemon_reload_if_needed(f"{DEB_SERVICE}.service", dropin=DEB_DROPIN),
        File(path=DEB_CONFIG, content=deb_config(spec)).with_notify(restart),
        *htpasswd_file_primitives(DEB_HTPASSWD, "root", DEB_SERVICE),
        Service(name=DEB_SERVICE, enabled=True, state="started"),
        tls_changed(spec, DEB_TLS_SUM).with_notify(restart),
    ]


def el_primitives(facts: Facts, spec: RegistrySpec) -> list[Primitive]:
    """httpd-tools, ~/registry with its compose file and htpasswd (the compose project is started later)."""
    return [
        Packages(names=packages(facts)),
        Directory(path=spec.compose_dir, mode="0755", owner=spec.admin),
        Template(path=f"{spec.compose_dir}/docker-compose.yml", template="repository/registry-compose.yml.j2",
                 variables=compose_vars(spec), owner=spec.admin, group=spec.admin),
        *htpasswd_file_primitives(f"{spec.compose_dir}/htpasswd", "root", "root"),
    ]


def compose_up(spec: RegistrySpec) -> Command:
    """`docker compose up -d` unless the container runs with the compose file's current config hash."""
    project = q(spec.compose_dir)
    running = (f"[ \"$(docker inspect -f '{{{{.State.Running}}}}' registry)\" = true ] && "
               f"[ \"$(docker inspect -f '{{{{index .Config.Labels \"com.docker.compose.config-hash\"}}}}' registry)\""
               f" = \"$(cd {project} && docker compose config --hash {EL_SERVICE} | awk '{{print $2}}')\" ]")
    return Command(cmd=f"cd {project} && docker compose up -d", unless=running)


def tls_changed(spec: RegistrySpec, sum_file: str, then: str = "") -> Command:
    """Record the cert/key hashes; when tls-certificate renewed them, the record differs and the registry restarts."""
    record = f"sha256sum {q(spec.cert)} {q(spec.key)} > {q(sum_file)}.new && mv -f {q(sum_file)}.new {q(sum_file)}"
    return Command(cmd=f"{then} && {record}" if then else record,
                   unless=f"sha256sum -c --status {q(sum_file)}")


def compose_restart_command(spec: RegistrySpec) -> str:
    """Restart the registry container so it reads a changed htpasswd."""
    return f"cd {q(spec.compose_dir)} && docker compose restart {EL_SERVICE}"


def htpasswd_file_primitives(path: str, owner: str, group: str) -> list[Primitive]:
    """An (empty at first) htpasswd file with the mode and owner the reader needs; its entries come via stdin."""
    return [
        Command(args=["install", "-m", "0640", "-o", owner, "-g", group, "/dev/null", path], creates=path),
        Command(cmd=f"{argv('chown', f'{owner}:{group}', path)} && {argv('chmod', '0640', path)}",
                unless=stat_is(path, "0640", owner, group)),
    ]


def htpasswd_verify_command(path: str, user: str) -> str:
    """Read-only check that the entry matches the password given on stdin (exit 0 when it does)."""
    return f"htpasswd -vi {q(path)} {q(user)}"


def htpasswd_set_command(path: str, user: str) -> str:
    """Write the bcrypt entry with the password read from stdin (never on the command line)."""
    return f"htpasswd -iB {q(path)} {q(user)}"


def ensure_htpasswd(ctx: TaskContext, path: str, user: str, password: str | None, notify: tuple[str, ...]) -> bool:
    """Verify first (idempotent), rewrite only a missing or wrong entry; the password only goes to stdin."""
    ident = f"htpasswd[{path}:{user}]"
    if password is not None:
        current = ctx.run(htpasswd_verify_command(path, user), stdin=password + "\n", check=False)
        if current.ok:
            return False
    if ctx.check:
        ctx.changed(ident, f"set the password of {user} in {path}", "(secret)")
        ctx.notify(*notify)
        return True
    if password is None:
        raise StepFailed(f"{ident}: no stage password")
    ctx.run(htpasswd_set_command(path, user), stdin=password + "\n")
    ctx.changed(ident, f"set the password of {user} in {path}", "(secret)")
    ctx.notify(*notify)
    return True


def stage_password(context_dir: Path | None, create: bool) -> str | None:
    """`.hive/<stage>/registry_password` (0600): read it, or make it once; None when absent and not creating."""
    return stage_secret(context_dir, PASSWORD_FILE, create, PASSWORD_LENGTH)


def dxf_env(facts: Facts, spec: RegistrySpec, password: str) -> str:
    """hive-builder's DXF_* exports (python-dxf pushes images with them); kept in a 0600 file, not in .bashrc."""
    return (f"export DXF_HOST={spec.host}:{spec.port}\nexport DXF_USERNAME={spec.user}\n"
            f"export DXF_PASSWORD={password}\nexport DXF_TLSVERIFY={ca_anchor_path(facts)}\n")


def dxf_primitives(facts: Facts, spec: RegistrySpec, password: str | None) -> list[Primitive]:
    """The admin's env file (secret) and the .bashrc line that sources it."""
    items: list[Primitive] = []
    if password is not None:
        items.append(File(path=f"{spec.home}/{DXF_ENV}", content=dxf_env(facts, spec, password), mode="0600",
                          owner=spec.admin, group=spec.admin, secret=True))
    items.append(BlockInFile(path=f"{spec.home}/.bashrc", block=f"[ -r ~/{DXF_ENV} ] && . ~/{DXF_ENV}",
                             marker="# {mark} HIVE MANAGED BLOCK registry", mode="0644", owner=spec.admin,
                             group=spec.admin))
    return items


def ensure_dxf_env(ctx: TaskContext, facts: Facts, spec: RegistrySpec, password: str | None) -> None:
    """Without a stage password yet (check mode on a new stage) the env file can only be predicted."""
    if password is None:
        ctx.changed(f"file[{spec.home}/{DXF_ENV}]", f"create {spec.home}/{DXF_ENV} (DXF_* for python-dxf)",
                    "(secret)")
    ctx.ensure(dxf_primitives(facts, spec, password))


def spec_for(ctx: TaskContext) -> RegistrySpec:
    """Site variables hive-builder reads in this role (hive_registry_port, hive_docker_login_user, ...)."""
    admin = str(ctx.var("hive_admin") or "admin")
    return RegistrySpec(host=ctx.name, port=int(ctx.var("hive_registry_port") or DEFAULT_PORT),
                        user=str(ctx.var("hive_docker_login_user") or DEFAULT_USER), admin=admin,
                        home=str(ctx.var("hive_home_dir") or f"/home/{admin}"),
                        internal_cidr=ctx.var("hive_internal_cidr"))


def registry(ctx: TaskContext) -> None:
    """Install and configure the registry, then its htpasswd entry; a changed entry or config restarts it."""
    facts = ctx.facts
    spec = spec_for(ctx)
    if not (facts.is_debian or facts.is_redhat):
        raise StepFailed(f"registry: unsupported OS family {facts.os_family!r}")
    with ctx.lock:
        password = stage_password(ctx.context_dir, create=not ctx.check)
    if facts.is_debian:
        ctx.ensure([*rule_set_for(ctx, "registry"), *deb_primitives(facts, spec)])
        ensure_htpasswd(ctx, DEB_HTPASSWD, spec.user, password, (restart_handler(DEB_SERVICE),))
        ensure_dxf_env(ctx, facts, spec, password)
        return
    ctx.ensure(el_primitives(facts, spec))
    changed = ensure_htpasswd(ctx, htpasswd_path(facts, spec), spec.user, password, ())
    ctx.ensure([compose_up(spec), tls_changed(spec, f"{spec.compose_dir}/tls.sha256", compose_restart_command(spec))])
    if changed and not ctx.check:  # registry:2 reads htpasswd at start
        ctx.run(compose_restart_command(spec))
    ensure_dxf_env(ctx, facts, spec, password)
