"""Engine pieces without hosts: probe batching through a real sh, File plans, handlers, lock, journal, report."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path

import pytest

from hive_nornir.engine.errors import BadInput
from hive_nornir.engine.handlers import HandlerJournal, handler_command
from hive_nornir.engine.journal import RunJournal
from hive_nornir.engine.lock import StageLock, StageLocked
from hive_nornir.engine.outcome import CHANGED, FAILED, OK, UNREACHABLE, Change, HostOutcome
from hive_nornir.engine.probe import ProbeError, batch_script, split_output
from hive_nornir.engine.runbook import Runbook, Step
from hive_nornir.facts import FACTS_SCRIPT, canned, family_of, parse_facts
from hive_nornir.primitives.file import File, render
from hive_nornir.report.run_report import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, RunReport


def sh(script: str) -> str:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("family", ["debian", "redhat"])
def test_file_probe_and_plan_through_real_sh(tmp_path: Path, family: str) -> None:
    facts = canned(family)
    target = tmp_path / "app.conf"
    prim = File(path=str(target), content="a=1\nb=2\n", mode="0644", owner="root", group="root")
    missing = prim.plan(facts, sh(prim.probe(facts)))
    assert missing.changed and missing.uploads[0].content == b"a=1\nb=2\n" and "+a=1" in missing.diff

    target.write_text("a=1\nb=3\n")
    target.chmod(0o644)
    plan = prim.plan(facts, sh(prim.probe(facts)))
    assert plan.changed and "-b=3" in plan.diff and "+b=2" in plan.diff and plan.summary == f"update {target}"

    target.write_text("a=1\nb=2\n")
    target.chmod(0o600)
    plan = prim.plan(facts, sh(prim.probe(facts)))
    assert plan.changed and plan.commands == [f"chmod 0644 {target}"] and not plan.uploads

    target.chmod(0o644)
    assert not prim.plan(facts, sh(prim.probe(facts))).changed


def test_file_secret_never_in_diff(tmp_path: Path) -> None:
    facts = canned()
    target = tmp_path / "secret"
    target.write_text("old-password\n")
    prim = File(path=str(target), content="new-password\n", secret=True)
    plan = prim.plan(facts, sh(prim.probe(facts)))
    assert plan.changed and "password" not in plan.diff and "hidden" in plan.diff


def test_file_missing_parent_is_reported(tmp_path: Path) -> None:
    prim = File(path=str(tmp_path / "nope" / "x.conf"), content="x")
    plan = prim.plan(canned(), sh(prim.probe(canned())))
    assert plan.missing.startswith("directory of")


def test_large_file_is_compared_by_hash_only(tmp_path: Path) -> None:
    target = tmp_path / "big"
    target.write_bytes(b"x" * (300 * 1024))
    prim = File(path=str(target), content="small")
    out = sh(prim.probe(canned()))
    assert "content=" not in out
    assert "too large" in prim.plan(canned(), out).diff


def test_batch_splits_outputs_per_primitive(tmp_path: Path) -> None:
    files = [File(path=str(tmp_path / f"f{i}"), content=str(i)) for i in range(3)]
    (tmp_path / "f1").write_text("1")
    script, marker = batch_script(files, canned())
    outputs = split_output(sh(script), marker, 3)
    assert [f.plan(canned(), o).changed for f, o in zip(files, outputs, strict=True)] == [True, False, True]
    want = hashlib.sha256(b"1").hexdigest()
    assert f"sha={want}" in outputs[1]


def test_split_detects_truncated_output() -> None:
    with pytest.raises(ProbeError):
        split_output("@@m 0\nfoo\n", "@@m", 1)


def test_facts_script_runs_and_parses_here() -> None:
    facts = parse_facts(sh(FACTS_SCRIPT))
    assert facts.os_family == "debian" and facts.pkg_manager == "apt" and facts.kernel
    assert family_of("almalinux", "rhel centos fedora") == "redhat"
    assert family_of("ubuntu", "debian") == "debian"


def test_template_renders_strictly() -> None:
    from hive_nornir.primitives.file import TemplateError

    with pytest.raises(TemplateError, match=r"template 'does-not-exist\.j2' not found; looked in "):
        render("does-not-exist.j2")
    with pytest.raises(TemplateError, match="'db_password' is undefined"):
        render("monitoring/zabbix-server.conf.j2", db_name="zabbix", db_user="zabbix")


def test_handler_journal_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "handlers.json"
    journal = HandlerJournal(path)
    journal.notify("h1", ("reload:ssh", "restart:docker"))
    journal.notify("h1", ("reload:ssh",))
    assert journal.pending("h1") == ["reload:ssh", "restart:docker"]
    again = HandlerJournal(path)  # a new run after a failure still owes both
    assert again.pending("h1") == ["reload:ssh", "restart:docker"]
    again.done("h1", "reload:ssh")
    assert HandlerJournal(path).pending("h1") == ["restart:docker"]
    assert handler_command("reload:ssh") == "systemctl reload ssh"
    with pytest.raises(ValueError, match="unknown handler"):
        journal.notify("h1", ("bounce:ssh",))


def test_stage_lock_excludes_second_run(tmp_path: Path) -> None:
    # a second process sees what this second open sees: flock locks per open file description
    with StageLock(tmp_path), pytest.raises(StageLocked, match="locked by another run"), StageLock(tmp_path):
        pass
    with StageLock(tmp_path):
        pass


def test_journal_resume_point(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path, "setup-hosts")
    journal.start("setup-hosts", "private", False, ["a", "b", "c"])
    journal.step_done("a", [])
    journal.step_done("b", ["h2"])
    assert RunJournal(tmp_path, "setup-hosts").resume_point() == "b"
    journal.step_done("b", [])
    journal.step_done("c", [])
    journal.finish()
    assert RunJournal(tmp_path, "setup-hosts").resume_point() is None


def _noop(ctx: object) -> None:
    return None


def test_tags_select_steps_and_reject_unknown() -> None:
    rb = Runbook("p", (Step("a", _noop, tags=("x",)), Step("b", _noop, tags=("y",)),
                       Step("c", _noop, tags=("always",))))
    assert [s.name for s in rb.select_steps(["y"])] == ["b", "c"]
    assert [s.name for s in rb.select_steps(["a"])] == ["a", "c"]
    with pytest.raises(BadInput, match="unknown tag"):
        rb.select_steps(["nope"])
    with pytest.raises(BadInput, match=r"unknown tag\(s\) alway \(did you mean 'always'\?\)"):
        rb.select_steps(["alway"])


def test_report_exit_codes_and_plain_text() -> None:
    rep = RunReport("setup-hosts", "private", hosts=["h1", "h2", "h3"])
    rep.outcomes = [HostOutcome("h1", "base", CHANGED, [Change("file[/x]", "update /x")]),
                    HostOutcome("h2", "base", OK), HostOutcome("h3", "base", UNREACHABLE, error="refused")]
    assert rep.exit_code == EXIT_UNREACHABLE and rep.unreachable_hosts == ["h3"]
    rep.outcomes.append(HostOutcome("h2", "users", FAILED, error="exit 1: boom"))
    # Nornir's failed_hosts: a dict of every host whose MultiResult failed, unreachable ones included
    assert rep.exit_code == EXIT_FAILED and list(rep.failed_hosts) == ["h2", "h3"]
    text = rep.text()
    assert "\033[" not in text and "boom" in text and "users" in text
    data = rep.to_dict()
    assert data["exit_code"] == EXIT_FAILED and data["changed"] == 1
    assert "<table>" in rep._repr_html_()
    assert RunReport("p", "s", hosts=["a"], outcomes=[HostOutcome("a", "s")]).exit_code == EXIT_OK


def test_base64_roundtrip_matches_probe(tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.write_bytes("héllo\n".encode())
    out = sh(File(path=str(target), content="x").probe(canned()))
    old = next(line for line in out.splitlines() if line.startswith("content="))[8:]
    assert base64.b64decode(old) == "héllo\n".encode()


def test_facts_carry_the_sessions_address_and_port() -> None:
    """The firewall keeps the session's port open; reading it with the facts saves a round trip per step."""
    facts = parse_facts("os_id=debian\nssh_client=198.51.100.7\nssh_port=2222\n")
    assert (facts.ssh_client, facts.ssh_port) == ("198.51.100.7", 2222)
    assert parse_facts("ssh_port=99999\n").ssh_port is None and parse_facts("").ssh_port is None
    assert "ssh_port=" in FACTS_SCRIPT
