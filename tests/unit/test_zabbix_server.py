"""The zabbix role planned offline on both families (exact files and commands), and its API script's decisions.

The API script is exercised against FakeZabbix, an in-memory stand-in for the Zabbix 6.0 JSON-RPC API (no Zabbix
server can run in a unit test; tests/lab/test_zabbix_server_lab.py proves the script against the real one).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fake_host import FakeHost, FakeStageHost, plan_task, result, stage_host
from payload_loader import load_payload

from hive_nornir.engine.errors import StepFailed
from hive_nornir.facts import canned
from hive_nornir.runbooks.setup_hosts import RUNBOOK
from hive_nornir.tasks.monitoring import zabbix_agent as za
from hive_nornir.tasks.monitoring import zabbix_server as zs

api = load_payload("zabbix_api")

DEBIAN = canned("debian")
ALMA = canned("redhat")
HIVE, REPO = "p-hive0.pdns", "p-hive1.pdns"
GROUPS = ("servers", "repository")


def stage() -> dict[str, FakeStageHost | None]:
    """Two servers of stage pdns as the task sees them: groups and private IPs."""
    return {HIVE: stage_host(HIVE, "servers", "hives", "first_hive", ip="192.168.0.10"),
            REPO: stage_host(REPO, "servers", "repository", ip="192.168.0.11")}


def api_answer(changes: list[str]) -> Any:
    """A fake host whose API script answers with these changes."""
    return lambda cmd: json.dumps({"changes": changes}) if cmd.startswith("python3 ") else ""


def zabbix_plan(facts: Any, tmp_path: Path, changes: list[str] | None = None, **host_vars: Any) -> Any:
    return plan_task(zs.zabbix_server, facts, name=REPO, groups=GROUPS,
                     host_vars={"hive_admin": "admin", "hive_stage": "private", **host_vars},
                     stage_hosts=stage(), context_dir=tmp_path, run=api_answer(changes or []))


def secrets_of(tmp_path: Path) -> tuple[str, str]:
    return ((tmp_path / zs.DB_PASSWORD_FILE).read_text().strip(),
            (tmp_path / zs.ADMIN_PASSWORD_FILE).read_text().strip())


# -- Debian -------------------------------------------------------------------------------------------------------

def test_debian_installs_the_packages_and_writes_exact_configs(tmp_path: Path) -> None:
    plan = zabbix_plan(DEBIAN, tmp_path)
    db_pw, admin_pw = secrets_of(tmp_path)
    installs = [c for c in plan.commands if "apt-get install" in c]
    assert len(installs) == 1 and installs[0].endswith(
        "mariadb-server zabbix-server-mysql zabbix-frontend-php php-mysql apache2 libapache2-mod-php")
    files = plan.files
    assert files["/etc/zabbix/zabbix_server.conf"] == (
        "# managed by hive_nornir (zabbix): Debian's zabbix_server.conf settings plus the stage's database access\n"
        "LogFile=/var/log/zabbix-server/zabbix_server.log\nPidFile=/run/zabbix/zabbix_server.pid\n"
        "SocketDir=/run/zabbix\nDBHost=localhost\nDBName=zabbix\nDBUser=zabbix\n"
        f"DBPassword={db_pw}\nDBSocket=/run/mysqld/mysqld.sock\nTimeout=4\nAlertScriptsPath=/etc/zabbix/alert.d/\n"
        "FpingLocation=/usr/bin/fping\nLogSlowQueries=3000\nStatsAllowedIP=127.0.0.1\n"
        "# Debian 12 pairs zabbix 6.0.14 (MariaDB <= 10.10 supported) with MariaDB 10.11: without this it refuses "
        "to start\nAllowUnsupportedDBVersions=1\n"
        "Include=/etc/zabbix/zabbix_server.conf.d/*.conf\n")
    web = files["/etc/zabbix/zabbix.conf.php"]
    assert f"$DB['PASSWORD']\t\t\t= '{db_pw}';\n" in web and "$ZBX_SERVER_NAME\t\t= 'private';\n" in web
    assert "$ZBX_SERVER\t\t\t\t= 'localhost';\n$ZBX_SERVER_PORT\t\t= '10051';\n" in web
    assert files["/etc/apache2/ports.conf"] == (
        "# managed by hive_nornir (zabbix): apache serves the zabbix frontend only\nListen 10052\n")
    site = files["/etc/apache2/sites-available/hive-zabbix.conf"]
    assert "<VirtualHost *:10052>\n    DocumentRoot /usr/share/zabbix\n" in site
    assert "php_value post_max_size 16M" in site
    assert 'Directory ~ "^/usr/share/zabbix/(conf|app|include|local)/"' in site
    assert files[zs.API_SCRIPT] == Path(str(api.__file__)).read_text()
    assert "a2ensite -q hive-zabbix" in plan.commands and "a2dissite -q 000-default" in plan.commands
    assert ("zcat /usr/share/zabbix-server-mysql/schema.sql.gz /usr/share/zabbix-server-mysql/images.sql.gz "
            "/usr/share/zabbix-server-mysql/data.sql.gz | mysql zabbix") in plan.commands
    assert plan.notified == ["restart:zabbix-server"]
    assert zs.apache_listens().unless == "ss -Hltn 'sport = :10052' | grep -q ."
    # the task ran: the DB login check (password on stdin), apache's restart, the API script (request on stdin)
    assert plan.ran[0] == zs.db_login_check() and plan.ran[1:] == ["systemctl restart apache2",
                                                                   f"python3 {zs.API_SCRIPT}"]
    everything = "\n".join([*plan.commands, *plan.ran, *(v for k, v in files.items()
                                                         if k not in (zs.DEB_SERVER_CONF, zs.DEB_WEB_CONF))])
    assert db_pw not in everything and admin_pw not in everything
    assert not any("compose" in c for c in plan.commands)


def test_debian_secret_files_are_0640_for_their_readers_and_hidden(tmp_path: Path) -> None:
    spec = zs.ZabbixSpec(host=REPO)
    conf = next(p for p in zs.deb_server_primitives(spec, "pw") if getattr(p, "path", "") == zs.DEB_SERVER_CONF)
    web = next(p for p in zs.deb_web_primitives(spec, "pw") if getattr(p, "path", "") == zs.DEB_WEB_CONF)
    assert (conf.mode, conf.owner, conf.group, conf.secret) == ("0640", "root", "zabbix", True)  # type: ignore[attr-defined]
    assert (web.mode, web.owner, web.group, web.secret) == ("0640", "root", "www-data", True)  # type: ignore[attr-defined]


def test_the_firewall_opens_10051_and_10052_to_every_server(tmp_path: Path) -> None:
    ctx = FakeHost(REPO, DEBIAN, groups=GROUPS, stage_hosts=stage(), context_dir=tmp_path)
    block, live = zs.firewall_primitives(ctx)
    assert live.rules == tuple(  # type: ignore[attr-defined]
        f"-s {ip}/32 -p tcp -m multiport --dports 10051,10052 -m conntrack --ctstate NEW "
        '-m comment --comment "allow zabbix_server" -j ACCEPT' for ip in ("192.168.0.10", "192.168.0.11"))
    assert block.marker == "# {mark} HIVE-BUILDER MANAGED BLOCK for zabbix_server"  # type: ignore[attr-defined]


def test_the_db_login_check_keeps_the_password_off_argv() -> None:
    check = zs.db_login_check()
    assert check.startswith("read -r pw && f=$(mktemp)") and 'mysql --defaults-extra-file="$f"' in check
    assert 'rm -f "$f"' in check
    assert zs.db_setup_sql("s3cret").splitlines() == [
        "CREATE DATABASE IF NOT EXISTS zabbix CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;",
        "CREATE USER IF NOT EXISTS 'zabbix'@'localhost' IDENTIFIED BY 's3cret';",
        "ALTER USER 'zabbix'@'localhost' IDENTIFIED BY 's3cret';",
        "GRANT ALL PRIVILEGES ON zabbix.* TO 'zabbix'@'localhost';"]


def db_host(check: bool, login_ok: bool = False) -> FakeHost:
    """A host whose zabbix login check succeeds or fails; every other command succeeds."""
    return FakeHost(REPO, DEBIAN, check=check,
                    answer=lambda c: result(status=0 if login_ok or c != zs.db_login_check() else 1))


def test_database_is_created_only_when_the_login_fails() -> None:
    ok = db_host(check=False, login_ok=True)
    zs.ensure_database(ok, "pw")
    assert [(c.command, c.stdin) for c in ok.calls] == [(zs.db_login_check(), "pw\n")] and ok.outcome.changes == []
    bad = db_host(check=False)
    zs.ensure_database(bad, "pw")
    assert (bad.calls[1].command, bad.calls[1].stdin) == ("mysql", zs.db_setup_sql("pw"))
    assert [c.ident for c in bad.outcome.changes] == ["mysql-user[zabbix@localhost]"]
    predicted = db_host(check=True)
    zs.ensure_database(predicted, None)
    assert predicted.calls == [] and [c.ident for c in predicted.outcome.changes] == ["mysql-user[zabbix@localhost]"]


def test_check_mode_on_a_new_stage_predicts_and_makes_no_secret(tmp_path: Path) -> None:
    ctx = FakeHost(REPO, DEBIAN, host_vars={"hive_admin": "admin"}, groups=GROUPS, stage_hosts=stage(),
                   context_dir=tmp_path, check=True)
    zs.zabbix_server(ctx)
    assert not list(tmp_path.iterdir())
    changes = "\n".join(ctx.result.changes)
    assert "file[/etc/zabbix/zabbix_server.conf]" in changes and "mysql-user[zabbix@localhost]" in changes
    assert "zabbix-api[hosts]: register every server" in changes  # the script is not there yet: predicted
    assert not any(c.startswith("python3 ") or c == "mysql" for c in ctx.result.ran)


def test_api_changes_become_changes_and_an_api_error_fails_the_step(tmp_path: Path) -> None:
    plan = zabbix_plan(DEBIAN, tmp_path, changes=["register host p-hive0.pdns"])
    assert "zabbix-api: register host p-hive0.pdns" in plan.changes
    boom = lambda c: json.dumps({"error": "zabbix API: boom"}) if c.startswith("python3") else ""  # noqa: E731
    with pytest.raises(StepFailed, match="boom"):
        plan_task(zs.zabbix_server, DEBIAN, name=REPO, groups=GROUPS, stage_hosts=stage(), context_dir=tmp_path,
                  run=boom)


def test_the_request_names_every_stage_server_and_the_template(tmp_path: Path) -> None:
    ctx = FakeHost(REPO, DEBIAN, host_vars={"hive_zabbix_template": "My template"}, groups=GROUPS,
                   stage_hosts=stage(), context_dir=tmp_path)
    req = zs.api_request(ctx, zs.spec_for(ctx), "pw")
    assert req["hosts"] == [
        {"name": HIVE, "ip": "192.168.0.10", "port": "10050", "groups": ["Hives"]},
        {"name": REPO, "ip": "192.168.0.11", "port": "10050", "groups": ["Repository server"]}]
    assert (req["template"], req["delete"], req["url"]) == ("My template", ["Zabbix server"],
                                                            "http://127.0.0.1:10052/api_jsonrpc.php")
    assert zs.host_groups(["servers", "hives", "repository"]) == ["Hives", "Repository server"]


def test_stage_secret_is_0600_and_stable(tmp_path: Path) -> None:
    assert zs.stage_secret(tmp_path, "x", create=False) is None
    made = zs.stage_secret(tmp_path, "x", create=True)
    assert made and len(made) == zs.PASSWORD_LENGTH and (tmp_path / "x").stat().st_mode & 0o777 == 0o600
    assert zs.stage_secret(tmp_path, "x", create=True) == made


# -- EL -----------------------------------------------------------------------------------------------------------

EL_COMPOSE = """\
# managed by hive_nornir (zabbix): hive-builder's zabbix on EL; passwords come from .env (0600) next to this file
services:
  zabbix-server:
    image: zabbix/zabbix-server-mysql:alpine-5.2-latest
    container_name: zabbix-server
    restart: always
    ports:
      - "10051:10051"
    environment:
      DB_SERVER_HOST: zabbix-db
      MYSQL_DATABASE: zabbix
      MYSQL_USER: zabbix
      MYSQL_PASSWORD: ${ZABBIX_DB_PASSWORD}
    depends_on:
      - zabbix-db
    networks:
      default:
        ipv4_address: 172.31.255.130
  zabbix-web:
    image: procube/zabbix-web-nginx-mysql:latest
    container_name: zabbix-web
    restart: always
    ports:
      - "10052:8080"
    environment:
      ZBX_SERVER_HOST: zabbix-server
      DB_SERVER_HOST: zabbix-db
      MYSQL_DATABASE: zabbix
      MYSQL_USER: zabbix
      MYSQL_PASSWORD: ${ZABBIX_DB_PASSWORD}
    depends_on:
      - zabbix-server
    networks:
      default:
        ipv4_address: 172.31.255.131
  zabbix-db:
    image: mariadb:10.4
    container_name: zabbix-db
    restart: always
    command: --character-set-server=utf8 --collation-server=utf8_bin
    environment:
      MYSQL_DATABASE: zabbix
      MYSQL_USER: zabbix
      MYSQL_PASSWORD: ${ZABBIX_DB_PASSWORD}
      MYSQL_RANDOM_ROOT_PASSWORD: "yes"
    volumes:
      - zabbix-db-data:/var/lib/mysql
      - zabbix-db-config:/etc/mysql/conf.d
    networks:
      default:
        ipv4_address: 172.31.255.132
volumes:
  zabbix-db-data:
  zabbix-db-config:
networks:
  default:
    ipam:
      config:
        - subnet: 172.31.255.128/25
"""


def test_el_keeps_hive_builders_compose_project(tmp_path: Path) -> None:
    plan = zabbix_plan(ALMA, tmp_path, hive_internal_cidr="172.31.252.0/22")
    db_pw, _ = secrets_of(tmp_path)
    files = plan.files
    assert files["/home/admin/zabbix/docker-compose.yml"] == EL_COMPOSE
    assert files["/home/admin/zabbix/.env"] == f"ZABBIX_DB_PASSWORD={db_pw}\n"
    up = [c for c in plan.commands if "compose up" in c]
    assert up == ["cd /home/admin/zabbix && docker compose up -d"]
    assert not any("apt-get" in c or "dnf install" in c for c in plan.commands)
    assert plan.ran == [f"python3 {zs.API_SCRIPT}"]
    assert db_pw not in "\n".join([*plan.commands, files["/home/admin/zabbix/docker-compose.yml"]])
    env = next(p for p in zs.el_primitives(zs.ZabbixSpec(host=REPO), "pw") if getattr(p, "path", "").endswith(".env"))
    assert (env.mode, env.owner, env.secret) == ("0600", "admin", True)  # type: ignore[attr-defined]


def test_el_compose_without_internal_cidr_uses_hive_builders_default_subnet() -> None:
    assert zs.zabbix_net(None) == ("172.21.0.0/16", "172.21.0.2", "172.21.0.3", "172.21.0.4")
    guard = zs.compose_up(zs.ZabbixSpec(host=REPO)).unless or ""
    for svc in zs.EL_SERVICES:
        assert f"docker compose config --hash {svc}" in guard and f"'{{{{.State.Running}}}}' {svc}" in guard


# -- the agent on the repository, the runbook -----------------------------------------------------------------

def test_debian_repository_agent_trusts_its_own_address_not_a_container() -> None:
    plan = plan_task(za.zabbix_agent, DEBIAN, name=REPO, groups=GROUPS, stage_hosts=stage())
    assert "Server=127.0.0.1,192.168.0.11\n" in plan.files["/etc/zabbix/zabbix_agentd.conf"]
    assert not any("172.21.0.2" in c for c in plan.commands)
    el = plan_task(za.zabbix_agent, ALMA, name=REPO, groups=GROUPS, stage_hosts=stage())
    assert "Server=127.0.0.1,172.21.0.2\n" in el.files["/etc/zabbix/zabbix_agentd.conf"]


def test_the_step_sits_in_the_repository_play_before_registry() -> None:
    names = [s.name for s in RUNBOOK.steps]
    assert names.index("zabbix") == names.index("registry") - 1
    assert names.index("zabbix-agent") < names.index("zabbix")
    step = RUNBOOK.steps[names.index("zabbix")]
    assert step.groups == ("repository",) and set(step.tags) == {"zabbix", "repository", "setup-hosts"}
    assert step.when is not None and step.when({"hive_zabbix": True}) and not step.when({})  # type: ignore[arg-type]


# -- the API script against an in-memory Zabbix ---------------------------------------------------------------

class FakeZabbix:
    """In-memory Zabbix 6.0 API: users, host groups, one template, hosts; counts every write."""

    def __init__(self) -> None:
        self.password = "zabbix"
        self.groups = {"Linux servers": "2", "Zabbix servers": "4"}
        self.hosts: dict[str, dict[str, Any]] = {"Zabbix server": {
            "hostid": "10084", "host": "Zabbix server", "groups": [{"groupid": "4"}], "parentTemplates": [],
            "interfaces": [{"interfaceid": "1", "type": "1", "main": "1", "useip": "1", "ip": "127.0.0.1",
                            "dns": "", "port": "10050"}]}}
        self.writes: list[str] = []
        self.logins: list[str] = []
        self.next_id = 100

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def __call__(self, method: str, params: Any) -> Any:
        if method == "apiinfo.version":
            return "6.0.14"
        if method == "user.login":
            self.logins.append(params["password"])
            if params.get("username") != "Admin" or params["password"] != self.password:
                raise api.ApiError("user.login: Incorrect user name or password")
            return "token"
        if method == "user.logout":
            return True
        if method.endswith(".get"):
            return self.get(method, params)
        self.writes.append(method)
        if method == "user.update":
            assert "current_passwd" not in params  # 6.0 refuses it ("unexpected parameter")
            self.password = params["passwd"]
            return {"userids": ["1"]}
        if method == "hostgroup.create":
            self.groups[params["name"]] = self.new_id()
            return {"groupids": [self.groups[params["name"]]]}
        if method == "host.create":
            iface = {**params["interfaces"][0], "interfaceid": self.new_id()}
            self.hosts[params["host"]] = {"hostid": self.new_id(), "host": params["host"], "groups": params["groups"],
                                          "parentTemplates": params["templates"],
                                          "interfaces": [{k: str(v) for k, v in iface.items()}]}
            return {"hostids": [self.hosts[params["host"]]["hostid"]]}
        if method == "host.update":
            host = next(h for h in self.hosts.values() if h["hostid"] == params["hostid"])
            host.update({k: v for k, v in params.items() if k in ("groups",)})
            if "templates" in params:
                host["parentTemplates"] = params["templates"]
            return {"hostids": [params["hostid"]]}
        if method == "hostinterface.update":
            for h in self.hosts.values():
                for i in h["interfaces"]:
                    if i["interfaceid"] == params["interfaceid"]:
                        i.update({k: str(v) for k, v in params.items()})
            return {"interfaceids": [params["interfaceid"]]}
        if method == "host.delete":
            self.hosts = {n: h for n, h in self.hosts.items() if h["hostid"] not in params}
            return {"hostids": params}
        raise AssertionError(method)

    def get(self, method: str, params: Any) -> Any:
        names = params.get("filter", {})
        if method == "user.get":
            return [{"userid": "1"}]
        if method == "hostgroup.get":
            return [{"groupid": i, "name": n} for n, i in self.groups.items() if n in names["name"]]
        if method == "template.get":
            return [{"templateid": "10001"}] if names["host"] == ["Linux by Zabbix agent"] else []
        if method == "host.get":
            return [json.loads(json.dumps(h)) for n, h in self.hosts.items() if n in names["host"]]
        raise AssertionError(method)


def run_script(fake: FakeZabbix, **overrides: Any) -> tuple[list[str], list[str]]:
    """register() against the fake; returns (changes, API writes)."""
    client = api.Api("http://fake")
    client.call = lambda method, params, auth=True: fake(method, params)
    before = len(fake.writes)
    req = {"url": "http://fake", "user": "Admin", "password": "stage-pw", "default_password": "zabbix",
           "groups": ["Hives", "Repository server"], "template": "Linux by Zabbix agent", "delete": ["Zabbix server"],
           "hosts": [{"name": HIVE, "ip": "192.168.0.10", "port": "10050", "groups": ["Hives"]},
                     {"name": REPO, "ip": "192.168.0.11", "port": "10050", "groups": ["Repository server"]}],
           "check": False, "wait_seconds": 0, **overrides}
    return api.register(client, req), fake.writes[before:]


def test_api_script_registers_a_fresh_server_then_writes_nothing() -> None:
    fake = FakeZabbix()
    predicted, writes = run_script(fake, check=True)
    assert writes == [] and fake.password == "zabbix"
    changes, writes = run_script(fake)
    assert changes == predicted == [
        "replace the default password of Admin by the stage secret", "create host group Hives",
        "create host group Repository server",
        f"register host {HIVE} (192.168.0.10:10050) in Hives",
        f"register host {REPO} (192.168.0.11:10050) in Repository server", "delete host Zabbix server"]
    assert writes == ["user.update", "hostgroup.create", "hostgroup.create", "host.create", "host.create",
                      "host.delete"]
    assert fake.password == "stage-pw" and "Zabbix server" not in fake.hosts
    assert fake.hosts[HIVE]["interfaces"][0]["ip"] == "192.168.0.10"
    assert run_script(fake) == ([], [])  # idempotent: no change, no API write
    assert fake.logins[-1] == "stage-pw"


def test_api_script_repairs_a_moved_interface_and_a_missing_group_without_removing_extras() -> None:
    fake = FakeZabbix()
    run_script(fake)
    fake.hosts[HIVE]["interfaces"][0]["ip"] = "10.0.0.99"
    fake.hosts[HIVE]["groups"] = [{"groupid": "2"}]  # someone put it in Linux servers only
    changes, writes = run_script(fake)
    assert changes == [f"add host {HIVE} to Hives", f"move agent interface of host {HIVE} to 192.168.0.10:10050"]
    assert writes == ["host.update", "hostinterface.update"]
    assert fake.hosts[HIVE]["groups"] == [{"groupid": "2"}, {"groupid": fake.groups["Hives"]}]


def test_api_script_refuses_an_unknown_admin_password_and_a_missing_template() -> None:
    fake = FakeZabbix()
    fake.password = "someone-elses"
    with pytest.raises(api.ApiError, match="neither the stage password nor the default"):
        run_script(fake)
    with pytest.raises(api.ApiError, match="template 'Nope'"):
        run_script(FakeZabbix(), template="Nope")


def test_api_script_main_predicts_in_check_mode_when_nothing_listens(monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    req = {"url": "http://127.0.0.1:9/api_jsonrpc.php", "check": True, "groups": [], "hosts": [], "template": "x"}
    monkeypatch.setattr("sys.stdin", SimpleNamespace(read=lambda: json.dumps(req)))
    assert api.main() == 0
    assert json.loads(capsys.readouterr().out)["changes"] == ["register every server (the frontend is not up yet)"]
    monkeypatch.setattr("sys.stdin", SimpleNamespace(read=lambda: json.dumps({**req, "check": False,
                                                                               "wait_seconds": 0})))
    assert api.main() == 1
    assert "unreachable" in json.loads(capsys.readouterr().out)["error"]

