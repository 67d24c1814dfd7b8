"""The repository play on a real host: registry over TLS with the stage password, service logs on 10514, backups.

Site `hrepo`, 10.86.0.0/24: one hive and one separate repository. tls-certificate runs first, as in setup-hosts:
the registry serves the host certificate signed by the stage CA.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from hive_nornir.api import Hive
from hive_nornir.engine.context import HostContext
from hive_nornir.engine.outcome import OK
from hive_nornir.engine.runbook import Runbook, Step
from hive_nornir.pki_paths import host_cert_path, host_key_path
from hive_nornir.primitives.packages import Packages
from hive_nornir.report.run_report import EXIT_OK
from hive_nornir.tasks.logs.rsyslogd import rsyslogd
from hive_nornir.tasks.monitoring.zabbix_agent import zabbix_agent
from hive_nornir.tasks.net.iptables import iptables
from hive_nornir.tasks.pki.tls_certificate import tls_certificate
from hive_nornir.tasks.repository.backup_tools import backup_tools
from hive_nornir.tasks.repository.registry import PASSWORD_FILE, registry

pytestmark = pytest.mark.lab

CA_ON_HOST = "/usr/local/share/ca-certificates/hive-cacert.crt"  # pki_paths.ca_anchor_path on Debian
WATCHED = ("/etc/docker /etc/systemd/system /usr/lib/systemd/system/backup.service "
           "/usr/lib/systemd/system/backup.timer /usr/bin/hive-backup.sh /etc/rsyslog.d /etc/logrotate.d "
           "/var/lib/dpkg/status /etc/pki/tls /usr/local/share/ca-certificates /home/admin/.bashrc "
           "/home/admin/.dxf_env")


def install_test_tools(ctx: HostContext) -> None:
    """Test setup step: curl for the registry checks (not part of the play)."""
    ctx.ensure([Packages(names=["curl"])])


def runbook() -> Runbook:
    """The repository play as the lead wires it, after tls-certificate (the stage CA and host cert it serves)."""
    return Runbook("repository-test", (
        Step("tls-certificate", tls_certificate, groups=("repository",), tags=("tls-certificate", "setup-hosts")),
        Step("iptables", iptables, groups=("repository",), tags=("iptables", "setup-hosts")),
        Step("test-tools", install_test_tools, groups=("repository",), tags=("test-tools",)),
        Step("registry", registry, groups=("repository",), tags=("registry", "repository", "setup-hosts")),
        Step("backup-tools", backup_tools, groups=("repository",),
             tags=("backup-tools", "repository", "setup-hosts")),
        Step("rsyslogd", rsyslogd, groups=("repository",), tags=("rsyslogd", "repository", "setup-hosts")),
    ))


def fingerprint(lab: Any, host: str) -> str:
    """Every file the play touches, hashed (observed via docker exec)."""
    _, out = lab.docker_exec(host, f"find {WATCHED} -type f 2>/dev/null | sort | xargs -r md5sum; "
                                   "systemctl is-enabled backup.timer docker-registry 2>&1")
    return out


def exec_stdin(lab: Any, host: str, cmd: str, data: str) -> tuple[int, str]:
    """docker exec with a secret on stdin (never in argv)."""
    r = subprocess.run(["docker", "exec", "-i", lab.container(host), "sh", "-c", cmd], input=data,
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def check_mode_on_a_fresh_host_changes_nothing(lab: Any, hive: Hive, book: Runbook, host: str) -> None:
    before = fingerprint(lab, host)
    t0 = time.monotonic()
    report = hive.run(book, check=True)
    print(f"check run on a fresh host: {time.monotonic() - t0:.1f} s, {report.changed} predicted changes")
    assert report.exit_code == EXIT_OK, report.text()
    assert fingerprint(lab, host) == before
    assert {o.step for o in report.outcomes} == {"tls-certificate", "iptables", "test-tools", "registry",
                                                 "backup-tools", "rsyslogd"}
    assert {o.host for o in report.outcomes} == {host}  # the hive is not in the repository play
    assert all(o.changes for o in report.outcomes if o.step != "test-tools")
    assert not (lab.context_dir / PASSWORD_FILE).exists()  # check mode makes no secret either


def first_run_configures_the_repository(lab: Any, hive: Hive, book: Runbook, host: str) -> None:
    t0 = time.monotonic()
    report = hive.run(book)
    print(f"first run: {time.monotonic() - t0:.1f} s, {report.changed} changes")
    assert report.exit_code == EXIT_OK, report.text()
    pw_file = lab.context_dir / PASSWORD_FILE
    assert pw_file.stat().st_mode & 0o777 == 0o600
    password = pw_file.read_text().strip()
    assert len(password) >= 15
    # the secret never reaches the report, the journal or the handlers file
    assert password not in report.to_json()
    for path in lab.context_dir.rglob("*.json"):
        assert password not in path.read_text(), path
    for unit in ("docker-registry", "rsyslog", "backup.timer"):
        assert lab.docker_exec(host, f"systemctl is-active {unit}")[1].strip() == "active", unit


def registry_answers_over_tls_with_the_stage_password_only(lab: Any, hive: Hive, book: Runbook, host: str) -> None:
    password = (lab.context_dir / PASSWORD_FILE).read_text().strip()
    curl = f"curl -sS -K - --cacert {CA_ON_HOST} -o /dev/null -w '%{{http_code}}' https://127.0.0.1:5000/v2/"
    assert exec_stdin(lab, host, curl, f'user = "hive:{password}"\n') == (0, "200")
    assert exec_stdin(lab, host, curl, 'user = "hive:wrong-password"\n') == (0, "401")
    # the registry serves exactly the host certificate that tls-certificate installed, issued by the stage CA
    served = lab.docker_exec(host, "openssl s_client -connect 127.0.0.1:5000 </dev/null 2>/dev/null | "
                                   "openssl x509 -noout -fingerprint -sha256 -issuer")[1]
    installed = lab.docker_exec(host, f"openssl x509 -in {host_cert_path(host)} -noout -fingerprint -sha256 "
                                      "-issuer")[1]
    assert served == installed and "CN = ca.hrepo" in served, (served, installed)
    # and curl really verifies: trusting only another CA (no system CA path), the same request is refused
    other = curl.replace(f"--cacert {CA_ON_HOST}", "--cacert /etc/ssl/certs/ISRG_Root_X1.pem --capath /nonexistent")
    rc, out = exec_stdin(lab, host, other, f'user = "hive:{password}"\n')
    assert rc == 60, out
    _, htpasswd = lab.docker_exec(host, "stat -c '%a %U %G' /etc/docker/registry/htpasswd; "
                                        "cat /etc/docker/registry/htpasswd")
    assert htpasswd.startswith("640 root docker-registry\nhive:$2y$") and password not in htpasswd
    # python-dxf's environment for the admin: a 0600 file sourced by .bashrc, not the password in .bashrc
    _, env = lab.docker_exec(host, "stat -c '%a %U' ~admin/.dxf_env; grep -c DXF_PASSWORD ~admin/.bashrc; "
                                   "su admin -c 'bash -ic \"echo \\$DXF_USERNAME@\\$DXF_HOST\"' 2>/dev/null")
    assert env.split() == ["600", "admin", "0", f"hive@{host}:5000"], env
    _, key = lab.docker_exec(host, f"stat -c '%a %U' {host_key_path(host)}")
    assert key.strip() == "600 root"  # the registry reads its own tmpfs copy; the host key stays root-only


def service_log_lands_in_var_log_services(lab: Any, hive: Hive, book: Runbook, host: str) -> None:
    lab.docker_exec(host, "logger -n 127.0.0.1 -P 10514 -d -t myapp -p local0.info hello-from-myapp")
    _, out = lab.docker_exec(host, "for i in $(seq 50); do grep -q hello-from-myapp /var/log/services/myapp.log "
                                   "2>/dev/null && break; sleep 0.1; done; cat /var/log/services/myapp.log")
    assert "myapp hello-from-myapp" in out, out
    lab.docker_exec(host, "logger -n 127.0.0.1 -P 10514 -d -t web -p local1.info per-host-line")
    short = host.split(".")[0]
    _, out = lab.docker_exec(host, f"for i in $(seq 50); do [ -s /var/log/services/{short}.web.log ] && break; "
                                   f"sleep 0.1; done; cat /var/log/services/{short}.web.log")
    assert "per-host-line" in out, out


def backup_timer_and_archive(lab: Any, hive: Hive, book: Runbook, host: str) -> None:
    _, timers = lab.docker_exec(host, "systemctl list-timers --all --no-pager")
    assert "backup.timer" in timers and "backup.service" in timers, timers
    _, calendar = lab.docker_exec(host, "systemctl show -p TimersCalendar -p Persistent backup.timer")
    assert "OnCalendar=*-*-* 01:00:00" in calendar and "Persistent=yes" in calendar, calendar
    blob = "/var/lib/docker-registry/docker/registry/v2/hrepo-test-blob"
    lab.docker_exec(host, f"mkdir -p {blob.rsplit('/', 1)[0]} && echo blob-data > {blob} && "
                          "chown -R docker-registry: /var/lib/docker-registry")
    rc, out = lab.docker_exec(host, "systemctl start backup.service")
    assert rc == 0, out + lab.docker_exec(host, "journalctl -u backup.service --no-pager | tail -20")[1]
    rc, out = lab.docker_exec(host, "cd ~admin/backup && readlink backup-hive-registry-latest.tar.gz && "
                                    "stat -L -c '%U %a' backup-hive-registry-latest.tar.gz && "
                                    "tar -tzf backup-hive-registry-latest.tar.gz")
    assert rc == 0, out
    target, owner_mode = out.splitlines()[:2]
    assert target.startswith("backup-hive-registry-") and target.endswith(".tar.gz") and owner_mode == "admin 600"
    assert "./docker/registry/v2/hrepo-test-blob" in out.splitlines()
    # -r restores the latest archive as the admin user (sudo for the registry's files)
    lab.docker_exec(host, f"rm -f {blob}")
    rc, out = lab.docker_exec(host, "su admin -c '/usr/bin/hive-backup.sh -r -l hive-registry'")
    assert rc == 0, out
    assert lab.docker_exec(host, f"stat -c %U {blob} && cat {blob}")[1].split() == ["docker-registry", "blob-data"]
    assert lab.docker_exec(host, "systemctl is-active docker-registry")[1].strip() == "active"
    rc, out = lab.docker_exec(host, "su admin -c '/usr/bin/hive-backup.sh -l nosuch'")
    assert rc != 0 and "no backup script for nosuch" in out


def second_run_changes_nothing(lab: Any, hive: Hive, book: Runbook, host: str) -> None:
    before = fingerprint(lab, host)
    t0 = time.monotonic()
    report = hive.run(book)
    print(f"second run: {time.monotonic() - t0:.2f} s")
    assert report.exit_code == EXIT_OK, report.text()
    assert report.changed == 0, report.changes()
    assert all(o.status == OK for o in report.outcomes)
    assert fingerprint(lab, host) == before
    assert hive.run(book, check=True).changed == 0


def a_wrong_password_entry_is_rewritten(lab: Any, hive: Hive, book: Runbook, host: str) -> None:
    lab.docker_exec(host, "sed -i 's/^hive:.*/hive:$2y$05$invalidinvalidinvalidinvalidinvalidinvalidinvalidinva/' "
                          "/etc/docker/registry/htpasswd")
    report = hive.run(book, tags=["registry"])
    assert report.exit_code == EXIT_OK and report.changed == 1, report.changes()
    assert any("restart:docker-registry" in o.handlers_run for o in report.outcomes)
    password = (lab.context_dir / PASSWORD_FILE).read_text().strip()
    curl = f"curl -sS -K - --cacert {CA_ON_HOST} -o /dev/null -w '%{{http_code}}' https://127.0.0.1:5000/v2/"
    assert exec_stdin(lab, host, curl, f'user = "hive:{password}"\n') == (0, "200")


def tls_logging_switches_the_collector_to_tcp_tls(lab: Any, hive: Hive, book: Runbook, host: str) -> None:
    """hive_tls_logging: the collector takes RFC 5425 over TLS on 10514, client cert from the stage CA."""
    (lab.root / "inventory" / "group_vars").mkdir(exist_ok=True)
    (lab.root / "inventory" / "group_vars" / "all.yml").write_text("hive_tls_logging: true\n")
    report = hive.run(book, tags=["rsyslogd"])
    assert report.exit_code == EXIT_OK and report.changed >= 2, report.text()
    assert any("restart:rsyslog" in o.handlers_run for o in report.outcomes)
    line = "<134>1 2026-11-22T00:00:00Z standalone1 tlsapp - - - hello-over-tls"
    send = (f"printf '%s\\n' '{line}' | timeout 20 openssl s_client -connect 127.0.0.1:10514 -quiet -no_ign_eof "
            f"-CAfile {CA_ON_HOST} -cert {host_cert_path(host)} -key {host_key_path(host)}")
    rc, out = lab.docker_exec(host, send)
    assert rc == 0, out
    _, got = lab.docker_exec(host, "for i in $(seq 50); do [ -s /var/log/services/tlsapp.log ] && break; "
                                   "sleep 0.1; done; cat /var/log/services/tlsapp.log")
    assert "hello-over-tls" in got, got
    assert hive.run(book, tags=["rsyslogd"]).changed == 0


def test_repository_play(make_lab) -> None:  # type: ignore[no-untyped-def]
    """One lab, the play's life in order: check on a fresh host, first run, effects, idempotency, repair."""
    lab = make_lab("hrepo", "10.86.0.0/24", 2, separate=True, stage_extra="internal_cidr: 172.31.252.0/22")
    host = lab.hosts[-1]
    hive, book = Hive(lab.root, stage="private"), runbook()
    check_mode_on_a_fresh_host_changes_nothing(lab, hive, book, host)
    first_run_configures_the_repository(lab, hive, book, host)
    registry_answers_over_tls_with_the_stage_password_only(lab, hive, book, host)
    service_log_lands_in_var_log_services(lab, hive, book, host)
    backup_timer_and_archive(lab, hive, book, host)
    second_run_changes_nothing(lab, hive, book, host)
    a_wrong_password_entry_is_rewritten(lab, hive, book, host)
    tls_logging_switches_the_collector_to_tcp_tls(lab, hive, book, host)


AGENT_PING = r"""
import socket, struct
s = socket.create_connection(("127.0.0.1", 10050), timeout=10)
s.sendall(b"ZBXD\x01" + struct.pack("<Q", 10) + b"agent.ping")
data = b""
while chunk := s.recv(1024):
    data += chunk
print(data[13:].decode())
"""


def zabbix_runbook() -> Runbook:
    """zabbix-agent on every server (the site asks for zabbix), then the repository's log collector."""
    def wants_zabbix(h: Any) -> bool:
        return bool(h.get("hive_zabbix"))
    return Runbook("zabbix-test", (
        Step("iptables", iptables, groups=("servers",), tags=("iptables", "setup-hosts")),  # rule sets need it
        Step("zabbix-agent", zabbix_agent, groups=("servers",), when=wants_zabbix,
             tags=("zabbix-agent", "setup-hosts")),
        Step("rsyslogd", rsyslogd, groups=("repository",), tags=("rsyslogd", "repository", "setup-hosts")),
    ))


def test_zabbix_agent_when_the_site_asks(make_lab) -> None:  # type: ignore[no-untyped-def]
    lab = make_lab("hrepo", "10.86.0.0/24", 2, separate=True, group_vars="hive_zabbix: true\n")
    hive, book = Hive(lab.root, stage="private"), zabbix_runbook()
    watched = "/etc/zabbix /etc/sudoers.d /etc/logrotate.d /var/lib/dpkg/status"
    before = {h: lab.docker_exec(h, f"find {watched} -type f 2>/dev/null | sort | xargs -r md5sum")[1]
              for h in lab.hosts}
    check = hive.run(book, check=True)
    assert check.exit_code == EXIT_OK and check.changed > 0, check.text()
    assert before == {h: lab.docker_exec(h, f"find {watched} -type f 2>/dev/null | sort | xargs -r md5sum")[1]
                      for h in lab.hosts}
    t0 = time.monotonic()
    report = hive.run(book)
    print(f"zabbix-agent first run on 2 hosts: {time.monotonic() - t0:.1f} s")
    assert report.exit_code == EXIT_OK, report.text()
    repo_name = lab.hosts[-1]
    for host in lab.hosts:
        assert lab.docker_exec(host, f"python3 -c '{AGENT_PING}'")[1].strip() == "1", host
        _, conf = lab.docker_exec(host, "cat /etc/zabbix_agentd.conf")
        assert f"Hostname={host}\n" in conf and f"ServerActive={repo_name}:10051\n" in conf
        assert lab.docker_exec(host, "sudo -u zabbix sudo -n true && echo ok")[1].strip() == "ok"
    repo_ip = lab.state["hosts"][repo_name]["private_ip"]
    assert f"Server=127.0.0.1,{repo_ip}\n" in lab.docker_exec(lab.hosts[0], "cat /etc/zabbix/zabbix_agentd.conf")[1]
    # the services' logs are readable by the agent's group, and logrotate accepts that group
    rc, out = lab.docker_exec(repo_name, "logrotate -d /etc/logrotate.d/hive-services 2>&1")
    assert rc == 0, out
    assert "create 0640 root zabbix" in lab.docker_exec(repo_name, "cat /etc/logrotate.d/hive-services")[1]
    again = hive.run(book)
    assert again.exit_code == EXIT_OK and again.changed == 0, again.changes()
