"""The zabbix role on a real repository: Debian's zabbix-server 6.0 + mariadb + frontend on 10052, hosts via the API.

Site `hzbx`, 10.94.0.0/24: one hive and one separate repository, `hive_zabbix: true`. The product's setup-hosts
runbook runs with the tags the role needs (iptables for the rule sets, zabbix-agent, zabbix, backup-tools). The
observations go through docker exec: the Zabbix API is asked from inside the repository (the controller reaches
hosts only through their published ssh ports), with the stage Admin password on stdin.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest

from hive_nornir.api import Hive
from hive_nornir.report.run_report import EXIT_OK
from hive_nornir.runbooks.setup_hosts import RUNBOOK
from hive_nornir.tasks.monitoring.zabbix_server import ADMIN_PASSWORD_FILE, DB_PASSWORD_FILE

pytestmark = pytest.mark.lab

TAGS = ["iptables", "zabbix-agent", "zabbix", "backup-tools"]
WATCHED = "/etc/zabbix /etc/apache2 /etc/mysql /var/lib/dpkg/status /usr/local/lib/hive-nornir /usr/bin/hive-backup.sh"

API_QUERY = r"""
import json, sys, urllib.request
pw = sys.stdin.readline().strip()
def call(method, params, auth=None):
    body = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
    if auth:
        body["auth"] = auth
    req = urllib.request.Request("http://127.0.0.1:10052/api_jsonrpc.php", json.dumps(body).encode(),
                                 {"Content-Type": "application/json-rpc"})
    return json.load(urllib.request.urlopen(req, timeout=30))
out = {"default_login": "error" not in call("user.login", {"username": "Admin", "password": "zabbix"})}
auth = call("user.login", {"username": "Admin", "password": pw})["result"]
out["hosts"] = call("host.get", {"output": ["host"], "selectGroups": ["name"], "selectParentTemplates": ["host"],
                                 "selectInterfaces": ["ip", "port", "type", "main", "useip"]}, auth)["result"]
out["ping"] = {i["hostid"]: i["lastvalue"] for i in call("item.get", {"output": ["hostid", "lastvalue", "lastclock"],
               "filter": {"key_": "agent.ping"}}, auth)["result"] if i["lastclock"] != "0"}
call("user.logout", [], auth)
print(json.dumps(out))
"""


def exec_stdin(lab: Any, host: str, cmd: list[str], data: str) -> tuple[int, str]:
    """docker exec with a secret on stdin (never in argv)."""
    r = subprocess.run(["docker", "exec", "-i", lab.container(host), *cmd], input=data, capture_output=True,
                       text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def api_view(lab: Any, repo: str, password: str) -> dict[str, Any]:
    """What the Zabbix API says, asked from inside the repository with the stage Admin password."""
    rc, out = exec_stdin(lab, repo, ["python3", "-c", API_QUERY], password + "\n")
    assert rc == 0, out
    view: dict[str, Any] = json.loads(out)
    return view


def fingerprint(lab: Any, host: str) -> str:
    """The files the role writes, hashed (observed via docker exec)."""
    return lab.docker_exec(host, f"find {WATCHED} -type f 2>/dev/null | sort | xargs -r md5sum")[1]


def test_zabbix_server_registers_the_stage(make_lab) -> None:  # type: ignore[no-untyped-def]
    """Check on fresh hosts, first run, API view, agent.ping through the server, secrets, backup, rerun."""
    lab = make_lab("hzbx", "10.94.0.0/24", 2, separate=True, group_vars="hive_zabbix: true\n")
    hive_name, repo = lab.hosts
    hive = Hive(lab.root, stage="private")
    before = fingerprint(lab, repo)
    check = hive.run(RUNBOOK, tags=TAGS, check=True)
    assert check.exit_code == EXIT_OK, check.text()
    assert any(o.step == "zabbix" and o.changes for o in check.outcomes), check.changes()
    assert fingerprint(lab, repo) == before
    assert not (lab.context_dir / ADMIN_PASSWORD_FILE).exists()  # check mode makes no secret

    t0 = time.monotonic()
    first = hive.run(RUNBOOK, tags=TAGS)
    print(f"first run (iptables, zabbix-agent, zabbix, backup-tools on 2 hosts): {time.monotonic() - t0:.1f} s, "
          f"{first.changed} changes")
    assert first.exit_code == EXIT_OK, first.text()
    secrets = {}
    for name in (ADMIN_PASSWORD_FILE, DB_PASSWORD_FILE):
        path = lab.context_dir / name
        assert path.stat().st_mode & 0o777 == 0o600, name
        secrets[name] = path.read_text().strip()
        assert len(secrets[name]) >= 20
    admin_pw = secrets[ADMIN_PASSWORD_FILE]

    # the API: both servers, their groups, agent interfaces at hive_private_ip:10050, the stock template
    ips = {h: lab.state["hosts"][h]["private_ip"] for h in lab.hosts}
    view = api_view(lab, repo, admin_pw)
    assert view["default_login"] is False  # Admin/zabbix no longer logs in
    hosts = {h["host"]: h for h in view["hosts"]}
    assert set(hosts) == {hive_name, repo}, hosts.keys()  # "Zabbix server" is gone
    assert [g["name"] for g in hosts[hive_name]["groups"]] == ["Hives"]
    assert [g["name"] for g in hosts[repo]["groups"]] == ["Repository server"]
    for name, h in hosts.items():
        assert [(i["ip"], i["port"], i["type"], i["main"], i["useip"]) for i in h["interfaces"]] == [
            (ips[name], "10050", "1", "1", "1")], h
        assert [t["host"] for t in h["parentTemplates"]] == ["Linux by Zabbix agent"]

    # the server really polls both agents over 10050: agent.ping=1 (reload its config cache, then wait, bounded)
    lab.docker_exec(repo, "zabbix_server -R config_cache_reload")
    ids = {h["hostid"]: name for name, h in hosts.items()}
    pings: dict[str, str] = {}
    for _ in range(60):
        pings = {ids[k]: v for k, v in api_view(lab, repo, admin_pw)["ping"].items() if k in ids}
        if len(pings) == 2:
            break
        time.sleep(5)
    assert pings == {hive_name: "1", repo: "1"}, (pings, lab.docker_exec(repo, "tail -20 "
                                                                          "/var/log/zabbix-server/zabbix_server.log"))

    # files and modes on the repository
    _, modes = lab.docker_exec(repo, "stat -c '%n %a %U %G' /etc/zabbix/zabbix_server.conf "
                                     "/etc/zabbix/zabbix.conf.php; id -nG admin; ss -ltnH")
    assert "/etc/zabbix/zabbix_server.conf 640 root zabbix" in modes
    assert "/etc/zabbix/zabbix.conf.php 640 root www-data" in modes and "zabbix" in modes.split("\n")[2].split()
    assert ":10052 " in modes and ":10051 " in modes and ":80 " not in modes, modes

    # the Admin secret is nowhere but in its 0600 file: not in the report, the stage's files or the host's logs
    assert admin_pw not in first.to_json() and secrets[DB_PASSWORD_FILE] not in first.to_json()
    for path in lab.context_dir.rglob("*"):
        if path.is_file() and path.name not in (ADMIN_PASSWORD_FILE, DB_PASSWORD_FILE):
            text = path.read_bytes()
            assert admin_pw.encode() not in text and secrets[DB_PASSWORD_FILE].encode() not in text, path
    rc, out = exec_stdin(lab, repo, ["sh", "-c", "read -r pw; { journalctl --no-pager; cat /var/log/apache2/*; } "
                                                 "2>/dev/null | grep -cF \"$pw\"; grep -rlF \"$pw\" /etc /var/log "
                                                 "/usr/local /home 2>/dev/null | wc -l"], admin_pw + "\n")
    assert out.split() == ["0", "0"], out

    # hive-backup.sh dumps the host-service database as the admin user
    rc, out = lab.docker_exec(repo, "su admin -c '/usr/bin/hive-backup.sh -l hive-zabbix' && cd ~admin/backup && "
                                    "zcat backup-hive-zabbix-latest.sql.gz | grep -c 'CREATE TABLE `users`'")
    assert rc == 0 and out.strip().endswith("1"), out

    before = {h: fingerprint(lab, h) for h in lab.hosts}
    t0 = time.monotonic()
    again = hive.run(RUNBOOK, tags=TAGS)
    print(f"second run: {time.monotonic() - t0:.1f} s, {again.changed} changes")
    assert again.exit_code == EXIT_OK and again.changed == 0, again.changes()
    assert before == {h: fingerprint(lab, h) for h in lab.hosts}
    assert hive.run(RUNBOOK, tags=TAGS, check=True).changed == 0
