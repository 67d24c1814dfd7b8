"""The repository play (registry, backup-tools, rsyslogd) planned offline on both families: exact files and commands."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from fake_host import FakeHost, FakeStageHost, plan_task, result, stage_host

from hive_nornir.engine.errors import StepFailed
from hive_nornir.facts import canned
from hive_nornir.primitives.file import render
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.primitives.service import Service
from hive_nornir.tasks.logs import rsyslogd as rs
from hive_nornir.tasks.monitoring import zabbix_agent as za
from hive_nornir.tasks.repository import backup_tools as bt
from hive_nornir.tasks.repository import registry as reg
from hive_nornir.transport import CommandResult

DEBIAN = canned("debian")
ALMA = canned("redhat")
REPO = "p-hive1.pdns"
GROUPS = ("servers", "repository")


def repo_plan(task: Any, facts: Any, tmp_path: Path, **host_vars: Any) -> Any:
    """Plan a task on a fresh fake repository host of stage pdns (p-hive0 is the hive)."""
    return plan_task(task, facts, name=REPO, groups=GROUPS, host_vars={"hive_admin": "admin", **host_vars},
                     stage_hosts={"p-hive0.pdns": None, REPO: None}, context_dir=tmp_path)


# -- registry -----------------------------------------------------------------------------------------------------

def test_debian_registry_is_the_package_with_tls_auth_and_delete(tmp_path: Path) -> None:
    plan = repo_plan(reg.registry, DEBIAN, tmp_path)
    installs = [c for c in plan.commands if "apt-get install" in c]
    assert len(installs) == 1 and installs[0].endswith("docker-registry apache2-utils")
    config = plan.files["/etc/docker/registry/config.yml"]
    assert "  tls:\n    certificate: /etc/pki/tls/certs/p-hive1.pdns_cert.pem\n" in config
    assert "    key: /run/docker-registry/tls-key.pem\n" in config
    assert "auth:\n  htpasswd:\n    realm: hive-registry\n    path: /etc/docker/registry/htpasswd\n" in config
    assert "  delete:\n    enabled: true\n" in config and "  addr: :5000\n" in config
    assert "rootdirectory: /var/lib/docker-registry\n" in config
    assert plan.files["/etc/systemd/system/docker-registry.service.d/hive-tls.conf"].endswith(
        "[Service]\nRuntimeDirectory=docker-registry\nRuntimeDirectoryMode=0700\n"
        "ExecStartPre=+/usr/bin/install -m 0600 -o docker-registry -g docker-registry "
        "/etc/pki/tls/private/p-hive1.pdns_key.pem /run/docker-registry/tls-key.pem\n")
    assert "install -m 0640 -o root -g docker-registry /dev/null /etc/docker/registry/htpasswd" in plan.commands
    assert "systemctl daemon-reload" in plan.commands
    assert plan.notified.count("restart:docker-registry") == 3  # drop-in, config, cert/key record
    assert plan.ran == ["htpasswd -vi /etc/docker/registry/htpasswd hive"]  # verified; the fake says it matches
    password = (tmp_path / reg.PASSWORD_FILE).read_text().strip()
    files = plan.files
    env = files.pop("/home/admin/.dxf_env")  # the one place the password is meant to be: admin only
    assert env == (f"export DXF_HOST=p-hive1.pdns:5000\nexport DXF_USERNAME=hive\nexport DXF_PASSWORD={password}\n"
                   "export DXF_TLSVERIFY=/usr/local/share/ca-certificates/hive-cacert.crt\n")
    everything = "\n".join([*plan.commands, *plan.ran, *files.values()])
    assert password not in everything and not any("compose" in c for c in plan.commands)
    assert files["/home/admin/.bashrc"] == ("# BEGIN HIVE MANAGED BLOCK registry\n"
                                            "[ -r ~/.dxf_env ] && . ~/.dxf_env\n# END HIVE MANAGED BLOCK registry\n")


def test_dxf_env_file_is_secret_admin_only_and_predicted_without_a_password() -> None:
    spec = reg.RegistrySpec(host=REPO)
    env, bashrc = reg.dxf_primitives(DEBIAN, spec, "pw")
    assert (env.path, env.mode, env.owner, env.secret) == ("/home/admin/.dxf_env", "0600", "admin", True)  # type: ignore[attr-defined]
    assert (bashrc.owner, bashrc.mode) == ("admin", "0644")  # type: ignore[attr-defined]
    assert [p.ident for p in reg.dxf_primitives(DEBIAN, spec, None)] == [bashrc.ident]


def test_debian_registry_port_and_user_come_from_the_site(tmp_path: Path) -> None:
    plan = repo_plan(reg.registry, DEBIAN, tmp_path, hive_registry_port=5443, hive_docker_login_user="pusher")
    assert "  addr: :5443\n" in plan.files["/etc/docker/registry/config.yml"]
    assert plan.ran == ["htpasswd -vi /etc/docker/registry/htpasswd pusher"]


def test_el_registry_is_hive_builders_compose_project(tmp_path: Path) -> None:
    plan = repo_plan(reg.registry, ALMA, tmp_path, hive_internal_cidr="172.31.252.0/22")
    assert "dnf install -y httpd-tools" in plan.commands
    assert not any("docker-registry" in c for c in plan.commands)
    compose = plan.files["/home/admin/registry/docker-compose.yml"]
    assert compose == (
        "# managed by hive_nornir (registry): hive-builder's private registry on EL\n"
        "services:\n  registry_server:\n    image: registry:2\n    container_name: registry\n    restart: always\n"
        "    ports:\n      - \"5000:5000\"\n    environment:\n      REGISTRY_STORAGE_DELETE_ENABLED: 'True'\n"
        "      REGISTRY_AUTH: htpasswd\n      REGISTRY_AUTH_HTPASSWD_REALM: hive-registry\n"
        "      REGISTRY_AUTH_HTPASSWD_PATH: /auth/htpasswd\n"
        "      REGISTRY_HTTP_TLS_CERTIFICATE: /certs/certs/p-hive1.pdns_cert.pem\n"
        "      REGISTRY_HTTP_TLS_KEY: /certs/private/p-hive1.pdns_key.pem\n"
        "    volumes:\n      - regdata:/var/lib/registry\n      - /home/admin/registry:/auth\n"
        "      - /etc/pki/tls:/certs\nvolumes:\n  regdata:\n"
        "networks:\n  default:\n    ipam:\n      config:\n        - subnet: 172.31.255.0/25\n")
    assert "install -m 0640 -o root -g root /dev/null /home/admin/registry/htpasswd" in plan.commands
    up = [c for c in plan.commands if "docker compose up" in c]
    assert up == ["cd /home/admin/registry && docker compose up -d"]
    assert plan.ran == ["htpasswd -vi /home/admin/registry/htpasswd hive"]


def test_a_renewed_cert_or_key_restarts_the_registry() -> None:
    spec = reg.RegistrySpec(host=REPO)
    deb = reg.tls_changed(spec, "/etc/docker/registry/tls.sha256")
    assert deb.unless == "sha256sum -c --status /etc/docker/registry/tls.sha256"
    assert deb.cmd == ("sha256sum /etc/pki/tls/certs/p-hive1.pdns_cert.pem /etc/pki/tls/private/p-hive1.pdns_key.pem "
                       "> /etc/docker/registry/tls.sha256.new && mv -f /etc/docker/registry/tls.sha256.new "
                       "/etc/docker/registry/tls.sha256")
    items = reg.deb_primitives(DEBIAN, spec)
    assert items[-1].notify == ("restart:docker-registry",) and items[-1].ident == deb.ident
    el = reg.tls_changed(spec, "/home/admin/registry/tls.sha256", reg.compose_restart_command(spec))
    assert el.cmd.startswith("cd /home/admin/registry && docker compose restart registry_server && sha256sum ")


def test_el_compose_without_internal_cidr_has_no_network_block(tmp_path: Path) -> None:
    plan = repo_plan(reg.registry, ALMA, tmp_path)
    assert "networks:" not in plan.files["/home/admin/registry/docker-compose.yml"]


def test_compose_up_is_guarded_by_the_running_containers_config_hash() -> None:
    cmd = reg.compose_up(reg.RegistrySpec(host=REPO))
    assert cmd.unless is not None and "com.docker.compose.config-hash" in cmd.unless
    assert "docker compose config --hash registry_server" in cmd.unless and "{{.State.Running}}" in cmd.unless


@pytest.mark.parametrize(("cidr", "subnet"), [("172.31.252.0/22", "172.31.255.0/25"), ("10.0.0.0/16", "10.0.192.0/19"),
                                               (None, None)])
def test_registry_subnet_is_hive_builders_six_eighths_slice(cidr: str | None, subnet: str | None) -> None:
    assert reg.registry_subnet(cidr) == subnet


def test_daemon_reload_guard_also_catches_a_new_dropin_directory() -> None:
    cmd = reg.daemon_reload_if_needed("docker-registry.service", dropin="/etc/x.d/hive.conf")
    assert cmd.onlyif == ("systemctl show -p NeedDaemonReload -- docker-registry.service | grep -qx "
                          "NeedDaemonReload=yes || ! systemctl show -p DropInPaths -- docker-registry.service "
                          "| grep -qF /etc/x.d/hive.conf")


class HtpasswdHost(FakeHost):
    """A host that answers htpasswd -v from a stored password; argv and stdin are recorded separately."""

    def __init__(self, stored: str | None, check: bool = False) -> None:
        super().__init__(check=check, answer=self.htpasswd)
        self.stored = stored

    def htpasswd(self, command: str) -> CommandResult:
        given = (self.calls[-1].stdin or "").rstrip("\n")
        if command.startswith("htpasswd -vi"):
            return result(status=0 if self.stored == given else 1)
        self.stored = given
        return result()

    @property
    def argv(self) -> list[str]:
        return [c.command for c in self.calls]

    @property
    def stdin(self) -> list[str]:
        return [c.stdin or "" for c in self.calls]

    @property
    def changes(self) -> list[str]:
        return [f"{c.ident} {c.summary} {c.diff}" for c in self.outcome.changes]

    @property
    def notified(self) -> list[str]:
        return self.result.notified


def test_htpasswd_is_verified_then_written_with_the_password_on_stdin_only() -> None:
    host = HtpasswdHost(stored=None)
    assert reg.ensure_htpasswd(host, "/etc/docker/registry/htpasswd", "hive", "S3cretPw", ("restart:x",))
    assert host.argv == ["htpasswd -vi /etc/docker/registry/htpasswd hive",
                         "htpasswd -iB /etc/docker/registry/htpasswd hive"]
    assert host.stdin == ["S3cretPw\n", "S3cretPw\n"]
    assert not any("S3cretPw" in a for a in host.argv + host.changes)
    assert host.notified == ["restart:x"]
    again = HtpasswdHost(stored="S3cretPw")
    assert not reg.ensure_htpasswd(again, "/f", "hive", "S3cretPw", ("restart:x",))
    assert again.argv == ["htpasswd -vi /f hive"] and not again.changes and not again.notified


def test_htpasswd_in_check_mode_reports_and_writes_nothing() -> None:
    host = HtpasswdHost(stored="old", check=True)
    assert reg.ensure_htpasswd(host, "/f", "hive", "new", ())
    assert host.argv == ["htpasswd -vi /f hive"] and host.stored == "old"
    assert host.changes == ["htpasswd[/f:hive] set the password of hive in /f (secret)"]
    fresh = HtpasswdHost(stored=None, check=True)  # no stage password yet: nothing to verify, a change predicted
    assert reg.ensure_htpasswd(fresh, "/f", "hive", None, ())
    assert fresh.argv == []


def test_stage_password_is_made_once_0600_and_never_in_check_mode(tmp_path: Path) -> None:
    assert reg.stage_password(tmp_path, create=False) is None
    assert not (tmp_path / reg.PASSWORD_FILE).exists()
    first = reg.stage_password(tmp_path, create=True)
    assert first is not None and len(first) == reg.PASSWORD_LENGTH and first.isalnum()
    path = tmp_path / reg.PASSWORD_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert reg.stage_password(tmp_path, create=True) == first == reg.stage_password(tmp_path, create=False)
    path.chmod(0o644)
    reg.stage_password(tmp_path, create=False)
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(StepFailed):
        reg.stage_password(None, create=True)


def test_stage_password_is_made_once_under_concurrency(tmp_path: Path) -> None:
    seen: list[str | None] = []
    threads = [threading.Thread(target=lambda: seen.append(reg.stage_password(tmp_path, create=True)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1 and seen[0] == (tmp_path / reg.PASSWORD_FILE).read_text().strip()


# -- rsyslogd -----------------------------------------------------------------------------------------------------

def test_rsyslogd_collects_udp_10514_into_var_log_services(tmp_path: Path) -> None:
    plan = repo_plan(rs.rsyslogd, DEBIAN, tmp_path)
    conf = plan.files["/etc/rsyslog.d/services.conf"]
    assert 'module(load="imudp")\ninput(type="imudp" port="10514" ruleset="docker")\n' in conf
    assert ('template(name="hive_service_file" type="string" '
            'string="/var/log/services/%APP-NAME:::secpath-replace%.log")') in conf
    assert 'string="/var/log/services/%HOSTNAME:::secpath-replace%.%APP-NAME:::secpath-replace%.log")' in conf
    assert '  include(file="/etc/rsyslog-services.d/*.conf" mode="optional")\n' in conf
    assert ('  if $syslogfacility-text == "local0" then {\n'
            '    action(type="omfile" dynaFile="hive_service_file" fileCreateMode="0640")\n    stop\n  }\n') in conf
    assert ('  if not ($hostname == "p-hive0.pdns" or $hostname == "p-hive0" or $hostname == "p-hive1.pdns" '
            'or $hostname == "p-hive1") then {\n') in conf
    assert conf.rstrip().endswith(
        '  action(type="omfile" file="/var/log/service-other-facility.log" fileCreateMode="0640")\n}')
    assert "imtcp" not in conf and "gtls" not in conf
    assert plan.notified == ["restart:rsyslog"]
    assert any(c.endswith("rsyslog logrotate") and "apt-get install" in c for c in plan.commands)
    rotate = plan.files["/etc/logrotate.d/hive-services"]
    assert rotate.startswith("# managed by hive_nornir (rsyslogd)\n"
                             "/var/log/services/*.log /var/log/service-other-facility.log {\n")
    assert "    create 0640 root adm\n" in rotate
    assert not any("iptables" in c for c in plan.commands)  # the firewall task owns the syslog rule set


def test_rsyslog_config_is_validated_as_a_candidate() -> None:
    items = rs.rsyslog_primitives(DEBIAN, rs.SyslogSpec(host=REPO))
    assert [(p.path, p.mode) for p in items if isinstance(p, Directory)] == [
        ("/var/log/services", "0755"), ("/etc/rsyslog-services.d", "0755")]
    assert [(p.unit, p.enabled, p.state) for p in items if isinstance(p, Service)] == [
        ("rsyslog.service", True, "started")]
    conf = next(p for p in items if getattr(p, "path", "") == rs.CONFIG)
    assert conf.validate == "rsyslogd -N1 -f %s"  # type: ignore[attr-defined]


def test_rsyslogd_with_tls_logging_listens_on_tcp_with_the_stage_cert(tmp_path: Path) -> None:
    plan = repo_plan(rs.rsyslogd, ALMA, tmp_path, hive_tls_logging=True, hive_zabbix=True)
    conf = plan.files["/etc/rsyslog.d/services.conf"]
    assert ('global(DefaultNetstreamDriver="gtls"\n'
            '       DefaultNetstreamDriverCAFile="/etc/pki/ca-trust/source/anchors/cacert.pem"\n'
            '       DefaultNetstreamDriverCertFile="/etc/pki/tls/certs/p-hive1.pdns_cert.pem"\n'
            '       DefaultNetstreamDriverKeyFile="/etc/pki/tls/private/p-hive1.pdns_key.pem")\n') in conf
    assert 'input(type="imtcp" port="10514" ruleset="docker")' in conf and "imudp" not in conf
    assert "dnf install -y rsyslog logrotate rsyslog-gnutls gnutls-utils" in plan.commands
    assert "    create 0640 root zabbix\n" in plan.files["/etc/logrotate.d/hive-services"]


def test_log_group_exists_on_each_family() -> None:
    assert (rs.log_group(DEBIAN, False), rs.log_group(ALMA, False), rs.log_group(ALMA, True)) == ("adm", "root",
                                                                                                     "zabbix")


# -- backup-tools -------------------------------------------------------------------------------------------------

def test_backup_units_and_script(tmp_path: Path) -> None:
    plan = repo_plan(bt.backup_tools, DEBIAN, tmp_path)
    assert plan.files["/usr/lib/systemd/system/backup.service"] == (
        "# managed by hive_nornir (backup-tools)\n[Unit]\nDescription=back up the hive services of the repository\n"
        "Wants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=oneshot\nUser=admin\n"
        "ExecStart=/usr/bin/hive-backup.sh\n")
    assert plan.files["/usr/lib/systemd/system/backup.timer"] == (
        "# managed by hive_nornir (backup-tools)\n[Unit]\nDescription=nightly backup of the hive services\n\n"
        "[Timer]\nOnCalendar=*-*-* 01:00:00\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n")
    assert plan.commands == ["systemctl daemon-reload"]  # guarded: only when systemd says the units are stale
    script = plan.files["/usr/bin/hive-backup.sh"]
    assert "REGISTRY_MODE=package\nREGISTRY_DATA=/var/lib/docker-registry\n" in script
    assert "hive-zabbix" not in script


def test_el_backup_script_reaches_the_registry_through_compose(tmp_path: Path) -> None:
    plan = repo_plan(bt.backup_tools, ALMA, tmp_path, hive_zabbix=True, hive_registry_backup_cleanup_days_before=9)
    script = plan.files["/usr/bin/hive-backup.sh"]
    assert "REGISTRY_MODE=compose\nREGISTRY_DATA=/var/lib/registry\nREGISTRY_DIR=/home/admin/registry\n" in script
    assert "REGISTRY_KEEP_DAYS=9\n" in script and 'builtin_services="hive-registry hive-zabbix"' in script


def test_backup_script_is_validated_with_bash_n() -> None:
    items = bt.backup_primitives(DEBIAN, bt.BackupSpec())
    assert [(p.path, p.mode) for p in items if isinstance(p, Directory)] == [("/var/lib/hive-backup.d", "0755")]
    assert [(p.unit, p.enabled, p.state) for p in items if isinstance(p, Service)] == [
        ("backup.timer", True, "started")]
    script = next(p for p in items if getattr(p, "path", "") == bt.SCRIPT)
    assert script.validate == "bash -n %s" and script.mode == "0755"  # type: ignore[attr-defined]


def local_script(tmp_path: Path, **overrides: Any) -> Path:
    """The script rendered with a local registry dir and scripts dir, to run it here without a host."""
    variables: dict[str, Any] = {**bt.script_vars(DEBIAN, bt.BackupSpec()),
                                 "registry_data": str(tmp_path / "registry"),
                                 "scripts_dir": str(tmp_path / "hive-backup.d"), **overrides}
    (tmp_path / "registry" / "docker").mkdir(parents=True)
    (tmp_path / "registry" / "docker" / "blob").write_text("blob\n")
    (tmp_path / "hive-backup.d").mkdir()
    path = tmp_path / "hive-backup.sh"
    path.write_text(render("repository/hive-backup.sh.j2", **variables))
    path.chmod(0o755)
    return path


def run_script(script: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("zabbix", [False, True])
def test_backup_script_renders_valid_bash(tmp_path: Path, zabbix: bool) -> None:
    script = local_script(tmp_path, zabbix=zabbix)
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0


def test_backup_script_archives_the_registry_and_runs_service_scripts(tmp_path: Path) -> None:
    script = local_script(tmp_path)
    (tmp_path / "hive-backup.d" / "db").write_text(
        'backup_db() { echo dump > backup-db-1.sql; ln -sfn backup-db-1.sql backup-db-latest.sql; }\n'
        'restore_db() { cat backup-db-latest.sql; }\n')
    done = run_script(script, tmp_path)
    assert done.returncode == 0, done.stderr
    backups = tmp_path / "home" / "backup"
    latest = backups / "backup-hive-registry-latest.tar.gz"
    assert latest.is_symlink() and latest.resolve().name.startswith("backup-hive-registry-")
    assert latest.resolve().stat().st_mode & 0o777 == 0o600
    listing = subprocess.run(["tar", "-tzf", str(latest)], capture_output=True, text=True).stdout.split()
    assert "./docker/blob" in listing
    assert (backups / "backup-db-latest.sql").read_text() == "dump\n"
    restored = run_script(script, tmp_path, "-r", "-l", "db")
    assert restored.returncode == 0 and "dump" in restored.stdout
    unknown = run_script(script, tmp_path, "-l", "nosuch")
    assert unknown.returncode == 1 and "no backup script for nosuch" in unknown.stderr
    assert run_script(script, tmp_path, "extra").returncode == 1


def test_zabbix_backup_is_skipped_while_no_zabbix_server_runs(tmp_path: Path) -> None:
    script = local_script(tmp_path, zabbix=True, zabbix_dir=str(tmp_path / "zabbix"))
    done = run_script(script, tmp_path, "-l", "hive-zabbix")
    assert done.returncode == 0 and "SKIP backup of hive-zabbix" in done.stdout


def test_a_failing_service_script_fails_the_run_but_not_the_others(tmp_path: Path) -> None:
    script = local_script(tmp_path)
    (tmp_path / "hive-backup.d" / "bad").write_text("backup_bad() { return 3; }\n")
    done = run_script(script, tmp_path)
    assert done.returncode == 1 and "FAIL backup of bad" in done.stdout
    assert (tmp_path / "home" / "backup" / "backup-hive-registry-latest.tar.gz").exists()


# -- zabbix-agent -------------------------------------------------------------------------------------------------

def stage(internal_cidr: str | None = None) -> dict[str, FakeStageHost | None]:
    """Two servers of stage pdns as the task sees them: groups and private IPs."""
    return {"p-hive0.pdns": stage_host("p-hive0.pdns", "servers", "hives", "first_hive", ip="192.168.0.10"),
            REPO: stage_host(REPO, "servers", "repository", ip="192.168.0.11")}


def zabbix_plan(facts: Any, name: str, groups: tuple[str, ...], **host_vars: Any) -> Any:
    return plan_task(za.zabbix_agent, facts, name=name, groups=groups, host_vars=host_vars, stage_hosts=stage())


def test_zabbix_agent_on_a_debian_hive_reports_to_the_repository() -> None:
    plan = zabbix_plan(DEBIAN, "p-hive0.pdns", ("servers", "hives"))
    assert plan.files["/etc/zabbix/zabbix_agentd.conf"] == (
        "# managed by hive_nornir (zabbix-agent)\nPidFile=/run/zabbix/zabbix_agentd.pid\n"
        "LogFile=/var/log/zabbix-agent/zabbix_agentd.log\nLogFileSize=0\nServer=127.0.0.1,192.168.0.11\n"
        "ServerActive=p-hive1.pdns:10051\nHostname=p-hive0.pdns\nInclude=/etc/zabbix/zabbix_agentd.conf.d/*.conf\n")
    assert plan.files["/etc/sudoers.d/zabbix"] == "zabbix ALL=(ALL) NOPASSWD: ALL\nDefaults:zabbix !requiretty\n"
    assert any("apt-get install" in c and c.endswith(" zabbix-agent") for c in plan.commands)
    assert not any(c.startswith(("rpm ", "setsebool")) for c in plan.commands)
    assert plan.notified == ["restart:zabbix-agent"]


def test_zabbix_agent_on_the_el_repository_trusts_the_server_container() -> None:
    plan = zabbix_plan(ALMA, REPO, GROUPS, hive_internal_cidr="172.31.252.0/22")
    conf = plan.files["/etc/zabbix/zabbix_agentd.conf"]
    assert "Server=127.0.0.1,172.31.255.130\n" in conf and "Include=/etc/zabbix/zabbix_agentd.d/\n" in conf
    assert "LogFile=/var/log/zabbix/zabbix_agentd.log\n" in conf
    assert plan.commands[0] == ("rpm -Uvh http://repo.zabbix.com/zabbix/7.0/rhel/9/x86_64/"
                                "zabbix-release-latest.el9.noarch.rpm")
    assert "dnf install -y zabbix-agent" in plan.commands
    assert [c for c in plan.commands if c.startswith("setsebool")] == [
        f"setsebool -P {b} on" for b in za.SELINUX_BOOLEANS]


@pytest.mark.parametrize("major", [8, 9, 10])
def test_zabbix_release_rpm_follows_the_el_major_version(major: int) -> None:
    """hive-builder's bug #14 gave EL8 and EL9 the el8 5.1 rpm; each major gets its own 7.0 LTS repository."""
    assert za.release_rpm(canned("redhat", os_version=f"{major}.4")) == (
        f"http://repo.zabbix.com/zabbix/7.0/rhel/{major}/x86_64/zabbix-release-latest.el{major}.noarch.rpm")


def test_zabbix_release_rpm_override_and_unknown_majors() -> None:
    assert za.release_rpm(ALMA, "http://mirror/z.rpm") == "http://mirror/z.rpm"
    with pytest.raises(StepFailed, match=r"no Zabbix 7\.0 repository for EL7"):
        za.release_rpm(canned("redhat", os_version="7.9"))
    assert za.release_rpm(canned("redhat", os_version="7.9"), "http://mirror/z.rpm") == "http://mirror/z.rpm"


def test_zabbix_config_is_vetted_by_the_agent_and_selinux_off_means_no_booleans() -> None:
    spec = za.AgentSpec(hostname=REPO, servers=("127.0.0.1",), server_active="x:10051")
    items = za.agent_primitives(canned("redhat", selinux="Disabled"), spec)
    conf = next(p for p in items if getattr(p, "path", "") == za.CONF)
    assert conf.validate == "zabbix_agentd -c %s -t agent.ping"  # type: ignore[attr-defined]
    assert not any(getattr(p, "cmd", "").startswith("setsebool") for p in items)


@pytest.mark.parametrize(("cidr", "ip"), [(None, "172.21.0.2"), ("172.31.252.0/22", "172.31.255.130")])
def test_zabbix_server_is_dot_two_of_the_seven_eighths_slice(cidr: str | None, ip: str) -> None:
    assert za.zabbix_server_ip(cidr) == ip


def test_a_stage_without_repository_is_refused() -> None:
    with pytest.raises(StepFailed):
        za.repository_of({"p-hive0.pdns": stage()["p-hive0.pdns"]})
