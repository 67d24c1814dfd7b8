"""netslice, docker engine and swarm planned offline: canned facts in, exact files and commands out."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fake_host import FakeHost, FakeSession, TaskPlan, plan_task, stage_host
from nornir.core import Nornir
from nornir.core.inventory import Defaults, Groups, Host, Hosts, Inventory

from hive_nornir.engine.context import HostContext, RunState
from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.handlers import HandlerJournal
from hive_nornir.engine.outcome import HostOutcome
from hive_nornir.facts import canned
from hive_nornir.netslice import gwbridge_v6, slice_internal_cidr
from hive_nornir.tasks.docker.docker_engine import (
    DAEMON_JSON,
    EL_REPO_FILE,
    OVERRIDE_CONF,
    daemon_json,
    docker_engine,
    override_conf,
)
from hive_nornir.tasks.docker.swarm import (
    SwarmInit,
    gwbridge_command,
    ingress_command,
    init_primitives,
    join_script,
    label_command,
    missing_labels,
    parse_swarm_state,
    swarm_init,
    swarm_join,
)
from hive_nornir.transport import CONNECTION_NAME, CommandResult

DEB, EL = canned("debian"), canned("redhat")
HOST = "p-hive0.pdns"
CIDR = "172.31.252.0/22"


# -- netslice --------------------------------------------------------------------------------------------------
def test_slices_match_hive_builders_table_for_172_31_252_0_22() -> None:
    n = slice_internal_cidr(CIDR)
    assert (n.hive_default_network, n.ingress_name, n.ingress_subnet, n.ingress_gateway) == \
        ("172.31.252.0/24", "apiarist-ingress", "172.31.253.0/24", "172.31.253.1")
    assert (n.docker_gwbridge, n.bip, n.registry_default, n.zabbix_default) == \
        ("172.31.254.0/25", "172.31.254.129/25", "172.31.255.0/25", "172.31.255.128/25")
    assert (n.zabbix_server_ip, n.zabbix_web_ip, n.zabbix_db_ip) == ("172.31.255.130", "172.31.255.131",
                                                                    "172.31.255.132")
    assert n.sliced and n.gwbridge_for_firewall == "172.31.254.0/25"


def test_defaults_without_internal_cidr() -> None:
    n = slice_internal_cidr(None)
    assert not n.sliced
    assert (n.bip, n.ingress_name, n.ingress_subnet, n.zabbix_default) == \
        ("172.17.128.1/16", "ingress", "10.0.0.0/24", "172.21.0.0/16")
    assert n.docker_gwbridge is None and n.hive_default_network is None and n.registry_default is None
    assert n.gwbridge_for_firewall == "172.20.0.0/16"


def test_other_block_sizes_and_host_bits_follow_the_same_formula() -> None:
    n = slice_internal_cidr("10.200.0.7/16")  # host bits ignored, like Ansible's ipaddr(index)
    assert (n.internal_cidr, n.hive_default_network, n.ingress_subnet, n.docker_gwbridge, n.bip) == \
        ("10.200.0.0/16", "10.200.0.0/18", "10.200.64.0/18", "10.200.128.0/19", "10.200.160.1/19")
    small = slice_internal_cidr("192.168.9.0/29")
    assert (small.docker_gwbridge, small.bip, small.zabbix_default) == \
        ("192.168.9.4/32", "192.168.9.6/32", "192.168.9.7/32")
    assert gwbridge_v6("fd00:1::/64") == "fd00:1:0:0:8000::/67" and gwbridge_v6(None) is None


@pytest.mark.parametrize("bad", ["10.0.0.0/30", "not-a-net", "fd00::/64"])
def test_blocks_that_cannot_be_sliced_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="internal_cidr"):
        slice_internal_cidr(bad)


# -- docker engine ---------------------------------------------------------------------------------------------
def test_debian_engine_plan_exact() -> None:
    plan = plan_task(docker_engine, DEB, host_vars={"hive_internal_cidr": CIDR, "hive_admin": "admin"},
                     run=lambda _c: "")
    assert plan.commands[0].startswith("apt-get update -q")
    assert plan.commands[1].startswith("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends")
    assert plan.commands[1].endswith(" docker.io")
    assert plan.commands[2:] == ["groupadd -r docker", "systemctl daemon-reload"]
    # the admin joins group docker; docker is enabled and started (both wait for the package on a fresh host)
    from hive_nornir.primitives.service import Service
    from hive_nornir.primitives.users import User
    from hive_nornir.tasks.docker.docker_engine import engine_primitives

    items = engine_primitives(HOST, DEB, "admin", CIDR)
    user = next(p for p in items if isinstance(p, User))
    assert (user.name, tuple(user.groups), user.shell) == ("admin", ("docker",), None)
    reload = next(p for p in items if getattr(p, "cmd", "") == "systemctl daemon-reload")
    # systemd does not flag a NEW drop-in dir as NeedDaemonReload: the guard also asks if ours is loaded
    assert f"*{OVERRIDE_CONF}*) true" in str(reload.unless) and "NeedDaemonReload=yes" in str(reload.unless)  # type: ignore[attr-defined]
    service = items[-1]
    assert isinstance(service, Service) and (service.unit, service.enabled, service.state) == \
        ("docker.service", True, "started")
    assert EL_REPO_FILE not in plan.files
    assert plan.files[OVERRIDE_CONF] == (
        "[Service]\nRestartSec=15s\nEnvironmentFile=-/etc/environment\nExecStart=\n"
        "ExecStart=/usr/sbin/dockerd --bip=172.31.254.129/25\n")
    assert json.loads(plan.files[DAEMON_JSON]) == {
        "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"],
        "tls": True, "tlsverify": True,
        "tlscacert": "/usr/local/share/ca-certificates/hive-cacert.crt",
        "tlscert": f"/etc/pki/tls/certs/{HOST}_cert.pem",
        "tlskey": f"/etc/pki/tls/private/{HOST}_key.pem",
        "iptables": True}
    assert plan.notified == ["restart:docker", "restart:docker"]
    # the drop-in is written before daemon.json: "hosts" must never meet `-H fd://`
    order = [i for i in plan.idents if i.startswith("file[")]
    assert order.index(f"file[{OVERRIDE_CONF}]") < order.index(f"file[{DAEMON_JSON}]")


def test_el_engine_plan_exact() -> None:
    plan = plan_task(docker_engine, EL, host_vars={"hive_registry_mirror": "https://mirror.example:5000"})
    assert plan.files[EL_REPO_FILE] == (
        "[docker-ce-stable]\n"
        "name=Docker CE Stable - $basearch\n"
        "baseurl=https://download.docker.com/linux/centos/$releasever/$basearch/stable\n"
        "enabled=1\n"
        "gpgcheck=1\n"
        "gpgkey=https://download.docker.com/linux/centos/gpg\n")
    assert "dnf install -y libseccomp docker-ce" in plan.commands
    assert plan.idents[0] == f"file[{EL_REPO_FILE}]"  # the repo exists before dnf looks for docker-ce
    assert plan.files[OVERRIDE_CONF].endswith("ExecStart=/usr/bin/dockerd --bip=172.17.128.1/16\n")
    conf = json.loads(plan.files[DAEMON_JSON])
    assert conf["tlscacert"] == "/etc/pki/ca-trust/source/anchors/cacert.pem"
    assert conf["registry-mirrors"] == ["https://mirror.example:5000"]
    assert list(conf)[-1] == "iptables" and "storage-driver" not in conf


@pytest.mark.parametrize(("facts", "reported", "path"), [
    (DEB, "", "/usr/sbin/dockerd"),  # Debian's docker.io, not installed yet (check mode): the family's path
    (canned("debian", os_id="ubuntu", os_version="24.04"), "", "/usr/bin/dockerd"),  # Ubuntu's docker.io
    (EL, "", "/usr/bin/dockerd"),  # docker-ce
    (DEB, "/usr/bin/dockerd\n", "/usr/bin/dockerd"),  # docker-ce on Debian: what the host says wins
    (EL, "not found\n", "/usr/bin/dockerd"),
])
def test_dockerd_path_is_read_from_the_host_after_the_install(facts: Any, reported: str, path: str) -> None:
    def run(cmd: str) -> str:
        return reported if cmd == "command -v dockerd || true" else ""

    plan = plan_task(docker_engine, facts, run=run)
    assert "command -v dockerd || true" in plan.ran
    assert plan.files[OVERRIDE_CONF].endswith(f"ExecStart={path} --bip=172.17.128.1/16\n")


def test_daemon_json_text_is_stable_and_vfs_only_on_request() -> None:
    text = daemon_json(HOST, DEB)
    assert text == daemon_json(HOST, DEB) and text.endswith("}\n")
    assert json.loads(daemon_json(HOST, DEB, vfs=True))["storage-driver"] == "vfs"
    assert override_conf(EL, "1.2.3.1/24").count("ExecStart=") == 2


def test_daemon_json_is_validated_by_dockerd_only_when_it_can() -> None:
    from hive_nornir.tasks.docker.docker_engine import engine_primitives

    files = {p.path: p for p in engine_primitives(HOST, DEB, "admin", None) if getattr(p, "validate", None)}  # type: ignore[attr-defined]
    assert list(files) == [DAEMON_JSON]
    assert files[DAEMON_JSON].validate == ("if dockerd --help 2>&1 | grep -q -- --validate; "  # type: ignore[attr-defined]
                                           "then dockerd --validate --config-file %s; fi")


def test_root_login_adds_nobody_to_the_docker_group() -> None:
    plan = plan_task(docker_engine, DEB, host_vars={"hive_admin": "root"})
    assert not [c for c in plan.commands if c.startswith(("useradd", "usermod"))]


def test_shared_repository_container_gets_vfs() -> None:
    plan = plan_task(docker_engine, DEB, host_vars={"hive_shared_repository": "repo.example"},
                     groups=("servers", "repository"))
    assert json.loads(plan.files[DAEMON_JSON])["storage-driver"] == "vfs"


# -- swarm -----------------------------------------------------------------------------------------------------
def test_swarm_commands_exact() -> None:
    n = slice_internal_cidr(CIDR)
    assert gwbridge_command(n) == (
        "docker network create --subnet 172.31.254.0/25 --opt com.docker.network.bridge.name=docker_gwbridge "
        "--opt com.docker.network.bridge.enable_icc=false --opt com.docker.network.bridge.enable_ip_masquerade=true "
        "docker_gwbridge")
    assert gwbridge_command(slice_internal_cidr(None)) is None
    assert "--subnet 172.31.254.0/25 --ipv6 --subnet fd00::8000:0:0:0/67 " in str(
        gwbridge_command(n, gwbridge_v6("fd00::/64")))
    assert ingress_command(n) == (
        "if docker network inspect ingress >/dev/null 2>&1; then yes | docker network rm ingress; fi\n"
        "docker network create --driver overlay --ingress --subnet=172.31.253.0/24 --gateway=172.31.253.1 "
        "apiarist-ingress")
    assert join_script("10.0.0.5", "10.0.0.4") == (
        "read -r T; timeout 120 docker swarm join --token \"$T\" --advertise-addr 10.0.0.5 10.0.0.4:2377")
    assert label_command("abc", ["first_hive", "hives"]) == \
        "docker node update --label-add first_hive=true --label-add hives=true abc"
    assert missing_labels('{"hives":"true"}', ["first_hive", "hives"]) == ["first_hive"]
    assert missing_labels("null", ["hives"]) == ["hives"]
    assert parse_swarm_state("active xyz\n", True).active and not parse_swarm_state("", False).active


def test_init_plan_on_first_hive() -> None:
    plan = plan_task(swarm_init, DEB, host_vars={"hive_internal_cidr": CIDR, "hive_private_ip": "10.0.0.4"},
                     groups=("servers", "hives", "first_hive"))
    assert plan.commands == [gwbridge_command(slice_internal_cidr(CIDR)),
                             "docker swarm init --advertise-addr 10.0.0.4",
                             ingress_command(slice_internal_cidr(CIDR))]
    plain = plan_task(swarm_init, DEB, host_vars={"hive_private_ip": "10.0.0.4"})
    assert plain.commands == ["docker swarm init --advertise-addr 10.0.0.4"]  # docker's own ingress stays


FIRST = stage_host("p-hive0.pdns", "servers", "hives", "first_hive", ip="10.0.0.4")


def _join_plan(states: list[str], check: bool = False, labels: str = "{}",
               mode: str | None = None) -> tuple[TaskPlan, FakeSession, list[tuple[str, Any]]]:
    """swarm_join on p-hive1 with p-hive0 as first_hive: `states` are its `docker info` answers in turn; the
    first hive's session answers join-token and node inspect and records what it was asked."""
    answers = iter(states)

    def on_first(command: str) -> str:
        if "join-token" in command:
            return "SWMTKN-1-secret\n"
        return labels if "node inspect" in command else ""

    first = FakeSession(on_first)
    host_vars = {"hive_internal_cidr": CIDR, "hive_private_ip": "10.0.0.5"}
    if mode:
        host_vars["hive_swarm_mode"] = mode
    ctx = FakeHost("p-hive1.pdns", DEB, host_vars=host_vars, groups=("servers", "hives", "private"),
                   answer=lambda c: next(answers) if c.startswith("docker info") else "",
                   stage_hosts={"p-hive0.pdns": FIRST}, peers={"p-hive0.pdns": first}, check=check,
                   apply_timeout=60)
    swarm_join(ctx)
    return ctx.result, first, [(c.command, c.stdin) for c in ctx.calls]


def test_join_passes_the_token_on_stdin_and_labels_every_group() -> None:
    result, first, stdin_seen = _join_plan(["inactive ", "active node1"])
    joins = [(c, s) for c, s in stdin_seen if "swarm join" in c]
    assert joins == [(join_script("10.0.0.5", "10.0.0.4"), "SWMTKN-1-secret\n")]
    assert all("SWMTKN" not in c for c, _ in stdin_seen) and all("SWMTKN" not in c for c in result.changes)
    assert first.ran[0] == "docker swarm join-token -q manager"
    assert first.ran[-1] == label_command("node1", ["hives", "private", "servers"])
    assert result.commands == [gwbridge_command(slice_internal_cidr(CIDR))]
    assert result.changes == ["swarm[join manager]: join the swarm of 10.0.0.4 as manager",
                              "swarm[labels]: label node hives=true, private=true, servers=true"]


def test_worker_mode_asks_for_the_worker_token() -> None:
    _, first, _ = _join_plan(["inactive ", "active node1"], mode="worker")
    assert first.ran[0] == "docker swarm join-token -q worker"


def test_a_member_never_joins_again_and_labels_only_what_is_missing() -> None:
    _, first, stdin_seen = _join_plan(["active node1"], labels='{"hives":"true","servers":"true"}')
    assert not [c for c, _ in stdin_seen if "swarm join" in c]
    assert first.ran[-1] == label_command("node1", ["private"])
    done, _, _ = _join_plan(["active node1"], labels='{"hives":"true","servers":"true","private":"true"}')
    assert done.changes == [] and done.commands == []


def test_check_mode_without_docker_predicts_join_and_labels() -> None:
    result, first, stdin_seen = _join_plan(["", ""], check=True)
    assert first.ran == []  # no token is read in check mode
    assert not [c for c, _ in stdin_seen if "swarm join" in c]
    assert [c.split(":")[0] for c in result.changes] == ["swarm[join manager]", "swarm[labels]"]


def test_a_pending_node_is_not_joined_blindly() -> None:
    with pytest.raises(StepFailed, match="pending"):
        _join_plan(["pending node1"])


def test_bad_swarm_mode_fails_before_anything_runs() -> None:
    with pytest.raises(StepFailed, match="hive_swarm_mode"):
        _join_plan(["inactive "], mode="leader")


def test_etc_docker_stays_0755_where_debians_registry_package_lives() -> None:
    """dpkg resets /etc/docker to 0755 for docker-registry's service user; 0700 there would flip on every run."""
    from hive_nornir.tasks.docker.docker_engine import etc_docker_mode

    assert etc_docker_mode(canned("debian"), {"servers", "repository"}) == "0755"
    assert etc_docker_mode(canned("debian"), {"servers", "hives"}) == "0700"
    assert etc_docker_mode(canned("redhat"), {"servers", "repository"}) == "0700"  # EL runs registry:2 in docker


# -- a node whose swarm is broken (issue 10 item 18) ---------------------------------------------------------
FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "$FAKE_DOCKER_LOG"
case "$*" in
  "info --format {{.Swarm.LocalNodeState}}") echo "$FAKE_SWARM_STATE";;
  "info --format {{.Swarm.Error}}") echo "rpc error: code = Unknown desc = raft: no quorum";;
  *) exit 1;;
esac
"""


def engine_on_fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str) -> tuple[HostContext, Path]:
    """The real HostContext over a session that runs each command with sh here, with a `docker` on PATH that
    reports `state` and records every call (anything but `docker info` fails, as a change would on that node)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "docker.log"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    monkeypatch.setenv("FAKE_SWARM_STATE", state)

    def local(command: str) -> CommandResult:
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)
        return CommandResult(command, done.returncode, done.stdout, done.stderr, 0.0)

    host = Host(name="p-hive0.pdns", hostname="127.0.0.1", port=22, defaults=Defaults())
    host.connections[CONNECTION_NAME] = SimpleNamespace(connection=FakeSession(local), close=lambda: None)
    nr = Nornir(inventory=Inventory(hosts=Hosts({host.name: host}), groups=Groups(), defaults=Defaults()))
    run = RunState(nornir=nr, handlers=HandlerJournal(None), facts={host.name: DEB})
    return HostContext(host, run, HostOutcome(host=host.name, step="swarm-init")), log


@pytest.mark.parametrize(("state", "says"), [
    ("error", "raft: no quorum"), ("pending", "a join is in progress"), ("locked", "docker swarm unlock")])
def test_init_on_a_broken_swarm_is_refused_before_anything_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str, says: str) -> None:
    """Was: `docker swarm init` ran (and gwbridge before it) and docker answered 'already part of a swarm'."""
    ctx, log = engine_on_fake_docker(tmp_path, monkeypatch, state)
    with pytest.raises(StepFailed, match=rf"^swarm\[init\]: .*{state}") as failed:
        ctx.ensure(init_primitives("10.0.0.4", slice_internal_cidr(CIDR)))
    assert says in str(failed.value) and "already part of a swarm" not in log.read_text()
    calls = log.read_text().splitlines()
    assert calls and all(c.startswith(("info ", "network inspect ")) for c in calls), calls  # reads only
    assert ctx.outcome.changes == []


@pytest.mark.parametrize(("out", "changed", "commands", "missing", "error"), [
    ("state=active", False, [], "", ""),
    ("state=inactive", True, ["docker swarm init --advertise-addr 10.0.0.4"], "", ""),
    ("state=", True, ["docker swarm init --advertise-addr 10.0.0.4"], "does not answer", ""),
    ("state=error\nerror=quorum lost ", False, [], "", "docker says: quorum lost"),
    ("state=locked", False, [], "", "hive_nornir does not hold it"),
])
def test_swarm_init_plans_by_state(out: str, changed: bool, commands: list[str], missing: str, error: str) -> None:
    plan = SwarmInit("10.0.0.4").plan(DEB, out)
    assert (plan.changed, plan.commands) == (changed, commands)
    assert missing in plan.missing if missing else not plan.missing
    assert error in plan.error if error else not plan.error


def test_join_and_labels_on_a_broken_node_fail_with_the_reason_in_check_mode_too() -> None:
    for check in (False, True):
        with pytest.raises(StepFailed, match=r"'error'.*leave --force"):
            _join_plan(["error "], check=check)
    with pytest.raises(StepFailed, match="locked"):
        plan_task(swarm_join, DEB, host_vars={"hive_private_ip": "10.0.0.4"},
                  groups=("servers", "hives", "first_hive"), run=lambda c: "locked node0" if "info" in c else "")
