"""zabbix (repository, when the site asks for it): the Zabbix server, its frontend/API on 10052 and every server.

Debian runs its own packages as host services (no container registry is reachable here): mariadb, zabbix-server-mysql
6.0 and zabbix-frontend-php under apache2 on 10052 (hive-builder's `10052:8080`). EL keeps hive-builder's
`~/zabbix/docker-compose.yml`. Then, through the JSON-RPC API (a stdlib script run on the repository, fed on stdin),
every server of the stage is registered with an agent interface, and Admin's factory password is replaced by the
stage secret `.hive/<stage>/zabbix_admin_password`. The DB password is `.hive/<stage>/zabbix_db_password`.
hive-builder's own XML templates are not shipped here: hosts get the stock `Linux by Zabbix agent` template.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.netslice import slice_internal_cidr
from hive_nornir.payload import payload_text
from hive_nornir.primitives.base import Primitive, q
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File, Template, render
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.probes import argv, stat_is
from hive_nornir.primitives.service import Service, restart_handler
from hive_nornir.stage_secrets import stage_secret
from hive_nornir.tasks.net.firewall import rule_set_for

DB_PASSWORD_FILE = "zabbix_db_password"  # noqa: S105 - file names, not passwords
ADMIN_PASSWORD_FILE = "zabbix_admin_password"  # noqa: S105
PASSWORD_LENGTH = 24
DB_NAME = DB_USER = "zabbix"
ADMIN_USER = "Admin"
DEFAULT_ADMIN_PASSWORD = "zabbix"  # noqa: S105 - the factory default we replace
SERVER_PORT = 10051
WEB_PORT = 10052
DEFAULT_TEMPLATE = "Linux by Zabbix agent"
HOST_GROUPS = ("Hives", "Repository server")
DELETE_HOSTS = ("Zabbix server",)
API_SCRIPT = "/usr/local/lib/hive-nornir/zabbix_api.py"
API_WAIT_SECONDS = 90

DEB_PACKAGES = ("mariadb-server", "zabbix-server-mysql", "zabbix-frontend-php", "php-mysql", "apache2",
                "libapache2-mod-php")
DEB_SERVER_CONF = "/etc/zabbix/zabbix_server.conf"
DEB_WEB_CONF = "/etc/zabbix/zabbix.conf.php"  # Debian's frontend reads it there (CConfigFile::CONFIG_FILE_PATH)
DEB_SCHEMA_DIR = "/usr/share/zabbix-server-mysql"
DEB_SCHEMA = ("schema.sql.gz", "images.sql.gz", "data.sql.gz")  # the order README.Debian gives
APACHE_SITE = "hive-zabbix"
APACHE_PORTS = "/etc/apache2/ports.conf"

EL_SERVER_IMAGE = "zabbix/zabbix-server-mysql:alpine-5.2-latest"
EL_WEB_IMAGE = "procube/zabbix-web-nginx-mysql:latest"
EL_DB_IMAGE = "mariadb:10.4"
EL_SERVICES = ("zabbix-server", "zabbix-web", "zabbix-db")


@dataclass(frozen=True)
class ZabbixSpec:
    """What the zabbix server looks like on the repository, from site variables."""

    host: str
    stage: str = ""
    admin: str = "admin"
    home: str = "/home/admin"
    internal_cidr: str | None = None
    template: str = DEFAULT_TEMPLATE

    @property
    def compose_dir(self) -> str:
        """hive-builder's `~/zabbix` (EL)."""
        return f"{self.home}/zabbix"


# -- Debian: packages as host services ------------------------------------------------------------------------------
def server_conf(db_password: str) -> str:
    """zabbix_server.conf: Debian's defaults plus the DB access (the file is 0640 root:zabbix)."""
    return render("monitoring/zabbix-server.conf.j2", db_name=DB_NAME, db_user=DB_USER, db_password=db_password)


def web_conf(spec: ZabbixSpec, db_password: str) -> str:
    """The frontend's zabbix.conf.php: DB access and server, so the setup wizard is skipped."""
    return render("monitoring/zabbix-web.conf.php.j2", db_name=DB_NAME, db_user=DB_USER, db_password=db_password,
                  server_port=SERVER_PORT, server_name=spec.stage or spec.host)


def db_login_check() -> str:
    """Exit 0 when user zabbix logs in with the password on stdin (via a mktemp 0600 option file, not argv)."""
    return ("read -r pw && f=$(mktemp) && printf '[client]\\nuser=%s\\npassword=%s\\n' "
            f"{DB_USER} \"$pw\" > \"$f\" && mysql --defaults-extra-file=\"$f\" -N -B -e 'SELECT 1' {DB_NAME} "
            ">/dev/null 2>&1; rc=$?; rm -f \"$f\"; exit $rc")


def db_setup_sql(db_password: str) -> str:
    """Database and user, idempotent; fed to root's `mysql` on stdin (the password never reaches argv)."""
    user = f"'{DB_USER}'@'localhost'"
    return (f"CREATE DATABASE IF NOT EXISTS {DB_NAME} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n"
            f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY '{db_password}';\n"
            f"ALTER USER {user} IDENTIFIED BY '{db_password}';\n"
            f"GRANT ALL PRIVILEGES ON {DB_NAME}.* TO {user};\n")


def schema_import() -> Command:
    """Import Debian's schema, images and data once: skipped when the users table has rows."""
    files = " ".join(f"{DEB_SCHEMA_DIR}/{f}" for f in DEB_SCHEMA)
    return Command(cmd=f"zcat {files} | mysql {DB_NAME}",
                   unless=f"mysql -N -B -e 'SELECT COUNT(*) FROM {DB_NAME}.users' 2>/dev/null | grep -q '^[1-9]'")  # noqa: S608


def ensure_database(ctx: TaskContext, db_password: str | None) -> None:
    """Verify the zabbix login first (idempotent); create or repair the database and user only when it fails."""
    ident = f"mysql-user[{DB_USER}@localhost]"
    if db_password is not None and ctx.run(db_login_check(), stdin=db_password + "\n", check=False).ok:
        return
    if ctx.check:
        ctx.changed(ident, f"create database {DB_NAME} and its user with the stage password", "(secret)")
        return
    if db_password is None:
        raise StepFailed(f"{ident}: no stage password")
    ctx.run("mysql", stdin=db_setup_sql(db_password))
    ctx.changed(ident, f"create database {DB_NAME} and its user with the stage password", "(secret)")


def deb_base_primitives() -> list[Primitive]:
    """Packages and the database server."""
    return [Packages(names=list(DEB_PACKAGES)), Service(name="mariadb", enabled=True, state="started")]


def deb_server_primitives(spec: ZabbixSpec, db_password: str | None) -> list[Primitive]:
    """Schema, server config (restart on change), running server."""
    restart = restart_handler("zabbix-server")
    items: list[Primitive] = [schema_import()]
    if db_password is not None:
        items.append(File(path=DEB_SERVER_CONF, content=server_conf(db_password), mode="0640", group="zabbix",
                          secret=True).with_notify(restart))
    items.append(Service(name="zabbix-server", enabled=True, state="started"))
    return items


def deb_web_primitives(spec: ZabbixSpec, db_password: str | None) -> list[Primitive]:
    """apache2 serving only the frontend on 10052, and the frontend's DB config (read by www-data)."""
    site = f"/etc/apache2/sites-available/{APACHE_SITE}.conf"
    items: list[Primitive] = [
        File(path=APACHE_PORTS, content=f"# managed by hive_nornir (zabbix): apache serves the zabbix frontend "
                                        f"only\nListen {WEB_PORT}\n"),
        Template(path=site, template="monitoring/zabbix-apache.conf.j2", variables={"port": WEB_PORT}),
        Command(cmd=f"a2ensite -q {APACHE_SITE}", creates=f"/etc/apache2/sites-enabled/{APACHE_SITE}.conf"),
        Command(cmd="a2dissite -q 000-default", removes="/etc/apache2/sites-enabled/000-default.conf"),
    ]
    if db_password is not None:
        items.append(File(path=DEB_WEB_CONF, content=web_conf(spec, db_password), mode="0640", group="www-data",
                          secret=True))
    return items


def deb_zabbix(ctx: TaskContext, spec: ZabbixSpec, db_password: str | None) -> None:
    """Packages, database, server and frontend; apache restarts at once when its config changed (the API needs it)."""
    if db_password is None:  # check mode on a new stage: the secret files can only be predicted
        for path in (DEB_SERVER_CONF, DEB_WEB_CONF):
            ctx.changed(f"file[{path}]", f"write {path} with the stage DB password", "(secret)")
    ctx.ensure(deb_base_primitives())
    ensure_database(ctx, db_password)
    ctx.ensure(deb_server_primitives(spec, db_password))
    if ctx.ensure(deb_web_primitives(spec, db_password)) and not ctx.check:
        ctx.run("systemctl restart apache2")
    ctx.ensure([Service(name="apache2", enabled=True, state="started"), apache_listens()])


def apache_listens() -> Command:
    """A run cut off between the config and the restart leaves apache on its old ports: restart it then."""
    return Command(cmd="systemctl restart apache2", unless=f"ss -Hltn 'sport = :{WEB_PORT}' | grep -q .")


# -- EL: hive-builder's compose project ---------------------------------------------------------------------------
def zabbix_net(internal_cidr: str | None) -> tuple[str, str, str, str]:
    """(subnet, server .2, web .3, db .4) of hive-builder's zabbix_default slice (172.21.0.0/16 without a cidr)."""
    subnet = slice_internal_cidr(internal_cidr).zabbix_default
    base = ipaddress.ip_network(subnet).network_address
    return subnet, str(base + 2), str(base + 3), str(base + 4)


def compose_vars(spec: ZabbixSpec) -> dict[str, object]:
    """The compose file's variables: hive-builder's images, ports and fixed addresses."""
    subnet, server_ip, web_ip, db_ip = zabbix_net(spec.internal_cidr)
    return {"server_image": EL_SERVER_IMAGE, "web_image": EL_WEB_IMAGE, "db_image": EL_DB_IMAGE,
            "server_port": SERVER_PORT, "web_port": WEB_PORT, "subnet": subnet, "server_ip": server_ip,
            "web_ip": web_ip, "db_ip": db_ip}


def compose_up(spec: ZabbixSpec) -> Command:
    """`docker compose up -d` unless every container runs with the compose file's current config hash."""
    d = q(spec.compose_dir)
    checks = " && ".join(
        f"[ \"$(docker inspect -f '{{{{.State.Running}}}}' {s} 2>/dev/null)\" = true ] && "
        f"[ \"$(docker inspect -f '{{{{index .Config.Labels \"com.docker.compose.config-hash\"}}}}' {s})\" = "
        f"\"$(docker compose config --hash {s} | awk '{{print $2}}')\" ]" for s in EL_SERVICES)
    return Command(cmd=f"cd {d} && docker compose up -d", unless=f"cd {d} && {checks}")


def el_primitives(spec: ZabbixSpec, db_password: str | None) -> list[Primitive]:
    """~/zabbix with its compose file and the 0600 .env holding the DB password, then compose up."""
    items: list[Primitive] = [
        Directory(path=spec.compose_dir, mode="0755", owner=spec.admin),
        Template(path=f"{spec.compose_dir}/docker-compose.yml", template="monitoring/zabbix-compose.yml.j2",
                 variables=compose_vars(spec), owner=spec.admin, group=spec.admin),
    ]
    if db_password is not None:
        items.append(File(path=f"{spec.compose_dir}/.env", content=f"ZABBIX_DB_PASSWORD={db_password}\n",
                          mode="0600", owner=spec.admin, group=spec.admin, secret=True))
    items.append(compose_up(spec))
    return items


# -- both families ------------------------------------------------------------------------------------------------
def host_groups(groups: list[str]) -> list[str]:
    """hive-builder's grouping: hives in `Hives`, the repository in `Repository server` (both when it is both)."""
    wanted = [g for g, member in (("Hives", "hives" in groups), ("Repository server", "repository" in groups))
              if member]
    return wanted or ["Hives"]


def stage_servers(ctx: TaskContext) -> list[dict[str, Any]]:
    """Every server of the stage (not narrowed by --limit) with its agent address, in site order."""
    servers = []
    for name, host in ctx.stage_hosts().items():
        groups = [str(getattr(g, "name", g)) for g in host.groups]
        if "servers" not in groups:
            continue
        ip = host.get("hive_private_ip")
        if not ip:
            raise StepFailed(f"zabbix: server {name} has no hive_private_ip to register")
        servers.append({"name": name, "ip": str(ip), "port": "10050", "groups": host_groups(groups)})
    return servers


def api_request(ctx: TaskContext, spec: ZabbixSpec, admin_password: str | None) -> dict[str, Any]:
    """The registration request the on-host script gets on stdin (the only place the Admin password travels)."""
    return {"url": f"http://127.0.0.1:{WEB_PORT}/api_jsonrpc.php", "user": ADMIN_USER,
            "password": admin_password, "default_password": DEFAULT_ADMIN_PASSWORD, "groups": list(HOST_GROUPS),
            "hosts": stage_servers(ctx), "template": spec.template, "delete": list(DELETE_HOSTS),
            "check": ctx.check, "wait_seconds": API_WAIT_SECONDS}


def api_script() -> File:
    """The stdlib registration script, installed root-only executable on the repository."""
    return File(path=API_SCRIPT, content=payload_text("zabbix_api.py"), mode="0755")


def register_servers(ctx: TaskContext, spec: ZabbixSpec, admin_password: str | None) -> None:
    """Run the API script on the repository; each change it reports (or predicts) becomes one change here."""
    ctx.ensure([Directory(path=API_SCRIPT.rsplit("/", 1)[0], mode="0755")])
    if ctx.ensure([api_script()]) and ctx.check:
        ctx.changed("zabbix-api[hosts]", "register every server of the stage (predicted: the script is new)")
        return
    result = ctx.run(f"python3 {API_SCRIPT}", stdin=json.dumps(api_request(ctx, spec, admin_password)),
                     check=False, timeout=API_WAIT_SECONDS + 120)
    try:
        answer = json.loads(result.stdout or "{}")
    except json.JSONDecodeError as e:
        raise StepFailed(f"zabbix API script: unreadable answer (rc {result.exit_status}): "
                         f"{(result.stderr or result.stdout)[-300:]}") from e
    if "error" in answer or not result.ok:
        raise StepFailed(f"zabbix API: {answer.get('error') or result.stderr[-300:]}")
    for change in answer.get("changes", []):
        ctx.changed("zabbix-api", str(change))


def log_access_primitives(spec: ZabbixSpec) -> list[Primitive]:
    """hive-builder: /var/log/messages root:zabbix 0640 when it exists, and the admin user in group zabbix."""
    f = "/var/log/messages"
    return [
        Command(cmd=f"{argv('chown', 'root:zabbix', f)} && {argv('chmod', '0640', f)}",
                onlyif=f"{argv('test', '-f', f)} && ! {stat_is(f, '0640', 'root', 'zabbix')}"),
        Command(cmd=f"usermod -aG zabbix {q(spec.admin)}",
                onlyif=f"getent group zabbix >/dev/null && ! id -nG {q(spec.admin)} | tr ' ' '\\n' | grep -qx zabbix"),
    ]


def firewall_primitives(ctx: TaskContext) -> list[Primitive]:
    """Rule set `zabbix_server`: agents' active checks (10051) and the frontend/API (10052) for every server."""
    return rule_set_for(ctx, "zabbix_server", "tcp", (str(SERVER_PORT), str(WEB_PORT)))


def spec_for(ctx: TaskContext) -> ZabbixSpec:
    """Site variables hive-builder reads in this role, plus hive_zabbix_template for the stock template's name."""
    admin = str(ctx.var("hive_admin") or "admin")
    return ZabbixSpec(host=ctx.name, stage=str(ctx.var("hive_stage") or ""), admin=admin,
                      home=str(ctx.var("hive_home_dir") or f"/home/{admin}"),
                      internal_cidr=ctx.var("hive_internal_cidr"),
                      template=str(ctx.var("hive_zabbix_template") or DEFAULT_TEMPLATE))


def zabbix_server(ctx: TaskContext) -> None:
    """Install and run the server and frontend, register every server through the API, open 10051/10052."""
    facts: Facts = ctx.facts
    if not (facts.is_debian or facts.is_redhat):
        raise StepFailed(f"zabbix: unsupported OS family {facts.os_family!r}")
    spec = spec_for(ctx)
    with ctx.lock:
        db_password = stage_secret(ctx.context_dir, DB_PASSWORD_FILE, not ctx.check, PASSWORD_LENGTH)
        admin_password = stage_secret(ctx.context_dir, ADMIN_PASSWORD_FILE, not ctx.check, PASSWORD_LENGTH)
    ctx.ensure(firewall_primitives(ctx))
    if facts.is_debian:
        deb_zabbix(ctx, spec, db_password)
    else:
        if db_password is None:
            ctx.changed(f"file[{spec.compose_dir}/.env]", "write .env with the stage DB password", "(secret)")
        ctx.ensure(el_primitives(spec, db_password))
    register_servers(ctx, spec, admin_password)
    ctx.ensure(log_access_primitives(spec))
