"""The report as Nornir's AggregatedResult: print_result prints it, report[host] is that host's MultiResult."""

from __future__ import annotations

import contextlib
import io
import logging
import re

import pytest
from nornir.core.task import AggregatedResult, MultiResult, Result

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.outcome import CHANGED, FAILED, OK, UNREACHABLE, Change, HostOutcome
from hive_nornir.facts import Facts
from hive_nornir.primitives.file import File
from hive_nornir.report.run_report import EXIT_FAILED, RunReport

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SECRET = "hunter2-do-not-print"


def planned_change(primitive: File, probe_output: str) -> Change:
    """A Change the way the engine makes it: from the primitive's own plan of a canned probe."""
    plan = primitive.plan(Facts(), probe_output)
    assert plan.changed
    return Change(primitive.ident, plan.summary, plan.diff)


def synthetic() -> RunReport:
    """Three hosts: one changed a plain file and a secret one, one failed its second step, one unreachable."""
    motd = planned_change(File(path="/etc/motd", content="managed\n"), "exists=no\nparent=yes")
    token = planned_change(File(path="/etc/hive/token", content=SECRET + "\n", secret=True),
                           "exists=no\nparent=yes")
    return RunReport("setup-hosts", "private", hosts=["p-hive0.t", "p-hive1.t", "p-hive2.t"], outcomes=[
        HostOutcome("p-hive0.t", "base", CHANGED, [motd, token], data={"password": SECRET}),
        HostOutcome("p-hive1.t", "base", OK),
        HostOutcome("p-hive1.t", "users", FAILED, error="`useradd admin`: exit 9\nuseradd: user exists"),
        HostOutcome("p-hive2.t", "base", UNREACHABLE, error="127.0.0.1:2201: connection refused"),
    ])


def printed(report: object) -> str:
    """print_result's output, colour codes removed (colorama always emits them)."""
    from nornir_utils.plugins.functions import print_result

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_result(report)
    return ANSI.sub("", out.getvalue())


def test_report_is_an_aggregated_result_of_multiresults() -> None:
    report = synthetic()
    assert isinstance(report, AggregatedResult) and report.name == "setup-hosts"
    assert list(report) == ["p-hive0.t", "p-hive1.t", "p-hive2.t"]
    host = report["p-hive1.t"]
    assert isinstance(host, MultiResult) and [r.name for r in host] == ["setup-hosts", "base", "users"]
    assert all(isinstance(r, Result) and r.host is not None and r.host.name == "p-hive1.t" for r in host)
    assert host.failed and not host.changed and host[2].failed and not host[1].failed
    assert isinstance(host[2].exception, StepFailed) and "exit 9" in host[2].result
    assert host[2].severity_level == logging.ERROR and host[1].severity_level == logging.INFO
    assert host[2].outcome.step == "users"  # type: ignore[attr-defined]  # the HostOutcome rides along
    assert isinstance(report["p-hive2.t"][1].exception, ConnectionError)
    changed = report["p-hive0"]  # a short name works, as with -l
    assert changed is report["p-hive0.t"] and changed.changed and "create /etc/motd" in changed[1].result
    assert "+managed" in changed[1].diff
    # Nornir's failed / failed_hosts: unreachable hosts count as failed there; exit code keeps them apart
    assert report.failed and set(report.failed_hosts) == {"p-hive1.t", "p-hive2.t"}
    assert report.exit_code == EXIT_FAILED and report.unreachable_hosts == ["p-hive2.t"]
    with pytest.raises(KeyError):
        report["p-hive9"]
    assert report.get("nope") is None and "p-hive0.t" in report and len(report) == 3


def test_the_dict_follows_outcomes_appended_after_it_was_read() -> None:
    report = RunReport("p", "s", hosts=["a.t"])
    assert list(report) == ["a.t"] and [r.name for r in report["a.t"]] == ["p"]
    report.outcomes.append(HostOutcome("a.t", "one", CHANGED, [Change("x", "did x")]))
    assert [r.name for r in report["a.t"]] == ["p", "one"] and report["a.t"].changed
    report.hosts = ["a.t", "b.t"]
    assert list(report.keys()) == ["a.t", "b.t"] and not report["b.t"].changed


def test_print_result_prints_hosts_steps_and_changed_flags_never_a_secret() -> None:
    text = printed(synthetic())
    assert text.startswith("setup-hosts*")
    for host in ("p-hive0.t", "p-hive1.t", "p-hive2.t"):
        assert f"* {host} ** changed : {host == 'p-hive0.t'}" in text
    assert "---- base ** changed : True" in text and "---- users ** changed : False" in text
    assert "create /etc/motd" in text and "+managed" in text  # the plain file's diff is shown
    assert "(content of /etc/hive/token hidden: secret)" in text
    assert SECRET not in text  # neither the secret file's content nor the outcome's data
    assert "useradd: user exists" in text and "connection refused" in text
    # one MultiResult per host, ended by its END line
    assert text.count("^^^^ END setup-hosts") == 3


def test_todays_table_json_and_html_are_unchanged_by_the_dict() -> None:
    report = synthetic()
    assert repr(report) == report.text() and report.text().splitlines()[0].startswith("setup-hosts on stage")
    assert {h["host"] for h in report.to_dict()["hosts"]} == set(report.hosts)
    assert "<table>" in report._repr_html_() and "(content of /etc/hive/token hidden: secret)" in report.to_json()
    assert report == synthetic() and report != RunReport("setup-hosts", "private")
    assert report.failure_lines() == [
        "error: p-hive1.t: failed at step users: `useradd admin`: exit 9 useradd: user exists",
        "error: p-hive2.t: unreachable at step base: 127.0.0.1:2201: connection refused",
    ]


def test_an_empty_report_prints_its_title_only() -> None:
    report = RunReport("setup-hosts", "private", error="bad -T", error_exit=2)
    assert printed(report).strip() == "setup-hosts" + "*" * (80 - len("setup-hosts"))
    assert not report and report.exit_code == 2
