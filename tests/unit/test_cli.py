"""CLI bad input: every mistake exits 2 with a message naming what is wrong, before any host is contacted."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hive_nornir.cli import main
from hive_nornir.engine.errors import BadInput
from hive_nornir.engine.journal import RunJournal
from hive_nornir.engine.lock import StageLock
from hive_nornir.report.run_report import EXIT_BAD_INPUT, EXIT_CODES, EXIT_FAILED, EXIT_LOCKED


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hive_nornir", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_lab_stage_without_state_is_refused_before_any_connection(tmp_path: Path) -> None:
    proc = run_cli("run", "setup-hosts", cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT
    assert "run build-infra" in proc.stderr and "p-hive0" in proc.stderr


def test_bad_flag_and_unknown_phase_exit_2(tmp_path: Path) -> None:
    assert run_cli("run", "setup-hosts", "--bogus", cwd=tmp_path).returncode == EXIT_BAD_INPUT
    proc = run_cli("run", "deploy-everything", cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT and "invalid choice" in proc.stderr


def test_bad_site_names_file_line_and_key(tmp_path: Path) -> None:
    inv = tmp_path / "inventory"
    inv.mkdir()
    (inv / "hive.yml").write_text(
        "plugin: hive_inventory\nname: t\nstages:\n  private:\n    provider: docker\n    cidr: 10.0.0.0/33\n"
        "    number_of_hosts: 2\n    disk_size: big\n"
    )
    proc = run_cli("inventory", cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT
    assert f"{inv / 'hive.yml'}:6: stages.private.cidr" in proc.stderr
    assert "stages.private.disk_size" in proc.stderr  # several errors at once


def test_undefined_stage_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "inventory"
    inv.mkdir()
    (inv / "hive.yml").write_text("plugin: hive_inventory\nname: t\nstages:\n  private:\n    provider: docker\n"
                                  "    cidr: 10.0.0.0/24\n")
    assert main(["-r", str(tmp_path), "-s", "staging", "inventory"]) == EXIT_BAD_INPUT
    assert "stage 'staging' is not defined" in capsys.readouterr().err


def test_exit_codes_are_listed(tmp_path: Path) -> None:
    proc = run_cli("exit-codes", cwd=tmp_path)
    assert proc.returncode == 0
    for code in EXIT_CODES:
        assert f"{code}  " in proc.stdout


def test_inventory_export_loads_in_plain_nornir(tmp_path: Path) -> None:
    from nornir import InitNornir

    out = tmp_path / "exported"
    proc = run_cli("inventory", "--export", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    nr = InitNornir(inventory={"plugin": "SimpleInventory", "options": {
        "host_file": str(out / "hosts.yaml"), "group_file": str(out / "groups.yaml"),
        "defaults_file": str(out / "defaults.yaml")}}, logging={"enabled": False})
    assert "p-hive0.hivelab" in nr.inventory.hosts and "hives" in nr.inventory.hosts["p-hive0.hivelab"].groups


# -- machine-readable output and exit codes (no host is contacted by any of these) ---------------------------
LAB_HOSTS = ("p-hive0.hivelab", "p-hive1.hivelab", "p-hive2.hivelab", "p-hive3.hivelab")


def write_state(root: Path, text: str | None = None) -> Path:
    """A docker-stage state.json; the port is never dialled: every test here stops before any connection."""
    ctx = root / ".hive" / "private"
    ctx.mkdir(parents=True, exist_ok=True)
    path = ctx / "state.json"
    path.write_text(text if text is not None else json.dumps(
        {"provider": "docker", "hosts": {h: {"address": "127.0.0.1", "port": 9, "user": "root"} for h in LAB_HOSTS}}))
    return path


def test_json_dash_stdout_is_only_the_json_document(tmp_path: Path) -> None:
    """A project of its own (site clijson): the embedded site's hivelab may be up from another checkout, and
    build-infra -C rightly refuses a lab this directory did not create (issue 10 item 1)."""
    (tmp_path / "inventory").mkdir()
    default_site = (Path(__file__).parents[2] / "hive_nornir" / "default_site" / "hive.yml").read_text()
    (tmp_path / "inventory" / "hive.yml").write_text(default_site.replace("name: hivelab", "name: clijson"))
    proc = run_cli("run", "build-infra", "-C", "--json", "-", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # nothing else on stdout
    hosts = {h.replace(".hivelab", ".clijson") for h in LAB_HOSTS}
    assert doc["exit_code"] == 0 and doc["check"] and {h["host"] for h in doc["hosts"]} == hosts
    assert "== build-infra" in proc.stderr and "build-infra on stage private" in proc.stderr
    assert "\x1b[" not in proc.stdout + proc.stderr


def test_json_dash_on_bad_input_is_still_json(tmp_path: Path) -> None:
    write_state(tmp_path)
    proc = run_cli("run", "setup-hosts", "-T", "nosuchtag", "--json", "-", cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == EXIT_BAD_INPUT and "nosuchtag" in doc["error"] and doc["steps"] == []
    assert "error: -T/--tags: unknown tag(s) nosuchtag" in proc.stderr
    bad_flag = run_cli("run", "setup-hosts", "--json", "-", "--bogus", cwd=tmp_path)
    assert bad_flag.returncode == EXIT_BAD_INPUT and json.loads(bad_flag.stdout)["exit_code"] == EXIT_BAD_INPUT


def test_json_file_records_the_lock_error(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    with StageLock(tmp_path / ".hive" / "private"):
        proc = run_cli("run", "build-infra", "-C", "--json", str(out), cwd=tmp_path)
    assert proc.returncode == EXIT_LOCKED and "locked" in proc.stderr
    doc = json.loads(out.read_text())
    assert doc["exit_code"] == EXIT_LOCKED and "locked" in doc["error"] and doc["phase"] == "build-infra"


def test_broken_state_json_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    state = write_state(tmp_path, "{not json")
    out = tmp_path / "report.json"
    for args in (("run", "setup-hosts", "--json", str(out)), ("run", "build-infra"), ("inventory",)):
        proc = run_cli(*args, cwd=tmp_path)
        assert proc.returncode == EXIT_BAD_INPUT, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        notice, *rest = proc.stderr.strip().splitlines()  # the embedded lab site is announced first
        assert notice.startswith("hive_nornir: using the embedded lab site ")
        assert rest == [f"error: {state}: cannot read provider state: "
                                                    "Expecting property name enclosed in double quotes: "
                                                    "line 1 column 2 (char 1)"]
    assert str(state) in json.loads(out.read_text())["error"]


def test_provider_error_on_destroy_is_a_failure_with_one_line(tmp_path: Path) -> None:
    """The docker engine is pointed at a socket that does not exist: the real provider's real error path."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    proc = subprocess.run([sys.executable, "-m", "hive_nornir", "run", "build-infra", "-D", "--json", "-"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == EXIT_FAILED, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "docker engine not reachable" in errors[0], proc.stderr
    assert json.loads(proc.stdout)["exit_code"] == EXIT_FAILED


def test_resume_needs_a_recorded_failure_with_the_same_selection(tmp_path: Path) -> None:
    write_state(tmp_path)
    proc = run_cli("run", "setup-hosts", "--resume", cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT and "no earlier setup-hosts run is recorded" in proc.stderr
    journal = RunJournal(tmp_path / ".hive" / "private", "setup-hosts")
    journal.start("setup-hosts", "private", False, ["hostsfile"], limit=["p-hive1.hivelab"], tags=["hostsfile"])
    journal.step_done("hostsfile", ["p-hive1.hivelab"])
    journal.finish()
    proc = run_cli("run", "setup-hosts", "--resume", cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT
    assert "used -l p-hive1.hivelab -T hostsfile, this one asks for no -l/-T" in proc.stderr
    proc = run_cli("run", "setup-hosts", "--resume", "-l", "p-hive2", "-T", "hostsfile", cwd=tmp_path)
    assert proc.returncode == EXIT_BAD_INPUT and "this one asks for -l p-hive2.hivelab -T hostsfile" in proc.stderr
    # a check run never overwrites the journal a real run left (it dials 127.0.0.1:9 and finds nothing there)
    proc = run_cli("run", "setup-hosts", "-C", "-l", "p-hive2", "-T", "hostsfile", cwd=tmp_path)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert json.loads(journal.path.read_text())["limit"] == ["p-hive1.hivelab"]


def test_resume_point_outside_the_selected_steps_is_refused(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path, "setup-hosts")
    journal.start("setup-hosts", "private", False, ["a", "b"])
    journal.step_done("a", ["h1"])
    with pytest.raises(BadInput, match="stopped at step 'a', which is not among the selected steps"):
        journal.resume_from(["b", "c"], None, None)
    assert journal.resume_from(["a", "b"], None, None) == "a"
    journal.start("setup-hosts", "private", False, ["a"])
    journal.step_done("a", [])
    journal.finish()
    with pytest.raises(BadInput, match="nothing to resume"):
        journal.resume_from(["a"], None, None)


# -- looking before running: ansible-playbook's --list-*, ansible-inventory's JSON --------------------------
def listening_state(root: Path) -> socket.socket:
    """Every lab host recorded at one port the test listens on: any connection the CLI made would be queued there."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.setblocking(False)
    port = server.getsockname()[1]
    write_state(root, json.dumps({"provider": "docker", "hosts": {
        h: {"address": "127.0.0.1", "port": port, "user": "root"} for h in LAB_HOSTS}}))
    return server


def cli_main(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in-process (`python -m hive_nornir -r ROOT ARGS` without starting an interpreter each time)."""
    code = main(["-r", str(root), *args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out.out, out.err)


def assert_never_dialled(server: socket.socket, root: Path) -> None:
    with pytest.raises(BlockingIOError):
        server.accept()
    server.close()
    assert sorted(p.name for p in (root / ".hive" / "private").iterdir()) == ["state.json"]  # no lock, no journal


def test_list_steps_tags_and_hosts_follow_tags_and_limit_without_a_connection(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = listening_state(tmp_path)
    proc = cli_main(tmp_path, capsys, "run", "setup-hosts", "-T", "registry,hostsfile", "-l", "p-hive0,repository",
                   "--list-steps", "--list-tags", "--list-hosts")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "phase setup-hosts, stage private",
        "  steps (2):",
        "    hostsfile  servers     TAGS: [hostsfile, setup-hosts]             2 hosts",
        "    registry   repository  TAGS: [registry, repository, setup-hosts]  1 host",
        "  TAGS: [hostsfile, registry, repository, setup-hosts]",
        "  hosts (2):",
        "    p-hive0.hivelab",
        "    p-hive3.hivelab",
    ]
    only_hosts = cli_main(tmp_path, capsys, "run", "setup-hosts", "-T", "registry", "--list-hosts")
    assert only_hosts.stdout.splitlines()[1:] == ["  hosts (1):", "    p-hive3.hivelab"], only_hosts.stdout
    every = cli_main(tmp_path, capsys, "run", "setup-hosts", "--list-steps")
    steps = [line.split()[0] for line in every.stdout.splitlines()[2:]]
    from hive_nornir.runbooks.setup_hosts import RUNBOOK

    assert steps == [s.name for s in RUNBOOK.steps] and every.stdout.splitlines()[1] == f"  steps ({len(steps)}):"
    bad = cli_main(tmp_path, capsys, "run", "setup-hosts", "-T", "nosuch", "--list-steps")
    assert bad.returncode == EXIT_BAD_INPUT and "unknown tag(s) nosuch" in bad.stderr
    assert_never_dialled(server, tmp_path)


def test_list_hosts_of_build_infra_names_the_provider(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proc = cli_main(tmp_path, capsys, "run", "build-infra", "--list-steps", "--list-hosts")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "phase build-infra, stage private: provider docker runs on the controller (no steps, no tags)",
        "  hosts (4):", *(f"    {h}" for h in LAB_HOSTS)]
    assert not (tmp_path / ".hive").exists()


def test_inventory_json_is_ansible_inventory_list_and_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hive.yml").write_text("plugin: hive_inventory\nname: t\nstages:\n  private:\n    provider: docker\n"
                                  "    cidr: 10.0.0.0/24\n    number_of_hosts: 3\n")
    (inv / "group_vars" / "hives.yml").write_text("app_port: 8080\nhive_registry_password: s3cret\n")
    server = listening_state(tmp_path)
    proc = cli_main(tmp_path, capsys, "inventory", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    hosts = ["p-hive0.t", "p-hive1.t", "p-hive2.t"]
    assert doc["all"] == {"children": ["ungrouped", "hosts", "servers", "hives", "repository", "first_hive",
                                       "private"]}
    assert doc["hives"] == {"hosts": hosts[:2]} and doc["repository"] == {"hosts": ["p-hive2.t"]}
    assert doc["servers"] == {"hosts": hosts} and doc["first_hive"] == {"hosts": ["p-hive0.t"]}
    hv = doc["_meta"]["hostvars"]
    assert list(hv) == hosts
    assert hv["p-hive1.t"]["app_port"] == 8080 and "app_port" not in hv["p-hive2.t"]  # group_vars/hives only
    assert hv["p-hive1.t"]["hive_private_ip"] == "10.0.0.5" and hv["p-hive1.t"]["hive_stage"] == "private"
    assert hv["p-hive1.t"]["hive_registry_password"] != "s3cret" and "s3cret" not in proc.stdout
    # no state.json for these names: the inventory's own fallback address, as hive_nornir would dial it
    assert (hv["p-hive0.t"]["ansible_host"], hv["p-hive0.t"]["ansible_port"]) == ("10.0.0.4", 22)
    assert hv["p-hive0.t"]["ansible_ssh_private_key_file"] == str(tmp_path / ".hive" / "private" / "id_ed25519")
    one = cli_main(tmp_path, capsys, "inventory", "--host", "p-hive1")
    assert one.returncode == 0 and json.loads(one.stdout) == hv["p-hive1.t"], one.stderr
    unknown = cli_main(tmp_path, capsys, "inventory", "--host", "hives")
    assert unknown.returncode == EXIT_BAD_INPUT
    assert "error: --host: no host 'hives' in stage private; hosts: p-hive0.t, p-hive1.t, p-hive2.t" in unknown.stderr
    assert_never_dialled(server, tmp_path)
