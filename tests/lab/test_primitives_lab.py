"""Primitives on a real host (site pr1, 10.140.0.0/24): File through a symlink and into a directory whose name has a
space, an empty file's diff, and a command handler that runs once after a change and never without one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import Lab, own_lab

from hive_nornir.api import Hive
from hive_nornir.engine.outcome import CHANGED, OK
from hive_nornir.engine.runbook import Runbook, Step
from hive_nornir.pki_paths import host_cert_path
from hive_nornir.primitives.file import File
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.report.run_report import EXIT_OK, RunReport
from hive_nornir.tasks.pki.tls_certificate import tls_certificate

pytestmark = pytest.mark.lab

NAME, CIDR = "pr1", "10.140.0.0/24"
BASE = "/srv/pr"


@pytest.fixture(scope="module")
def pr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One host of its own; every test works under /srv/pr on it."""
    with own_lab(tmp_path_factory.mktemp(NAME), NAME, CIDR, 2, separate=False) as lab:
        yield lab


@pytest.fixture(scope="module")
def hive(pr: Lab) -> Hive:
    return Hive(root=pr.root, stage="private")


@pytest.fixture(scope="module")
def host(pr: Lab) -> str:
    return pr.hosts[0]


def sh(lab: Lab, host: str, cmd: str) -> str:
    """A command on the host through docker exec (the test's own eyes, not the tool's)."""
    code, out = lab.docker_exec(host, cmd)
    assert code == 0, out
    return out


def run(hive: Hive, host: str, items: list, check: bool = False) -> RunReport:  # type: ignore[type-arg]
    report = hive.run_task(items, limit=host, check=check)
    assert report.exit_code == EXIT_OK, report.text()
    return report


def test_file_through_a_symlink_converges_and_stays(pr: Lab, hive: Hive, host: str) -> None:
    """Issue 10 item 17: the link's own 777 made every run plan a chmod; the target is what is managed."""
    sh(pr, host, f"mkdir -p {BASE} && printf 'old\\n' > {BASE}/real.conf && chmod 0600 {BASE}/real.conf "
                 f"&& ln -sfn real.conf {BASE}/link.conf")
    want = File(path=f"{BASE}/link.conf", content="new\n", mode="0640")
    first = run(hive, host, [want])
    assert [o.status for o in first.outcomes] == [CHANGED]
    assert sh(pr, host, f"readlink {BASE}/link.conf").strip() == "real.conf"  # still a link
    assert sh(pr, host, f"stat -c '%a %U %G' {BASE}/real.conf; cat {BASE}/real.conf") == "640 root root\nnew\n"
    second = run(hive, host, [want])
    assert [o.status for o in second.outcomes] == [OK], second.changes()
    sh(pr, host, f"chmod 0600 {BASE}/real.conf")
    fixed = run(hive, host, [want])
    assert [c.summary for o in fixed.outcomes for c in o.changes] == [
        f"{BASE}/link.conf -> {BASE}/real.conf: mode 600 -> 0640"]
    assert sh(pr, host, f"stat -c '%a' {BASE}/real.conf").strip() == "640"
    assert [o.status for o in run(hive, host, [want]).outcomes] == [OK]


def test_file_in_a_directory_with_a_space(pr: Lab, hive: Hive, host: str) -> None:
    """Issue 10 item 17: the unquoted dirname made the directory count as missing, so the step failed."""
    folder = f"{BASE}/my dir"
    items = [Directory(path=folder, mode="0755"), File(path=f"{folder}/x.conf", content="x = 1\n")]
    first = run(hive, host, items)
    assert [o.status for o in first.outcomes] == [CHANGED]
    assert sh(pr, host, f"cat '{folder}/x.conf'") == "x = 1\n"
    assert [o.status for o in run(hive, host, items).outcomes] == [OK]


def test_empty_file_shows_its_diff(pr: Lab, hive: Hive, host: str) -> None:
    sh(pr, host, f"mkdir -p {BASE} && : > {BASE}/empty.conf")
    report = run(hive, host, [File(path=f"{BASE}/empty.conf", content="line\n")], check=True)
    [change] = [c for o in report.outcomes for c in o.changes]
    assert "+line" in change.diff and "too large" not in change.diff


def test_command_handler_runs_once_then_never_without_a_change(pr: Lab, hive: Hive, host: str) -> None:
    """Issue 11 item 13: `on_change(argv)`: first run changes and runs it once (two files notify it); the second
    run changes nothing, runs nothing and costs what the same files without a handler cost."""
    log = f"{BASE}/handler.log"
    sh(pr, host, f"mkdir -p {BASE} && rm -f {log} {BASE}/h1.conf {BASE}/h2.conf {BASE}/plain.conf")
    record = ["sh", "-c", 'echo "changed: $1" >> "$2"', "sh", "h1 or h2", log]
    items = [File(path=f"{BASE}/h1.conf", content="a\n").on_change(record),
             File(path=f"{BASE}/h2.conf", content="b\n").on_change(record)]
    first = run(hive, host, items)
    assert sh(pr, host, f"cat {log}") == "changed: h1 or h2\n"
    handlers = [o for o in first.outcomes if o.step == "handlers"]
    assert len(handlers) == 1 and len(handlers[0].handlers_run) == 1
    second = run(hive, host, items)
    assert [o.step for o in second.outcomes] == ["task"] and second.changed == 0
    assert sh(pr, host, f"cat {log}") == "changed: h1 or h2\n"
    plain = [File(path=f"{BASE}/h1.conf", content="a\n"), File(path=f"{BASE}/h2.conf", content="b\n")]
    baseline = run(hive, host, plain)
    assert second.outcomes[0].round_trips == baseline.outcomes[0].round_trips


def test_tls_certificate_not_valid_yet_is_signed_again(pr: Lab, hive: Hive, host: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 item 18: a certificate signed while the controller's clock was 9 hours ahead was reported ok, and
    every TLS peer refused it until then; now the next run signs it again and the one after changes nothing."""
    import datetime

    import hive_nornir.ca as ca_module

    book = Runbook("tls", (Step("tls-certificate", tls_certificate, groups=("all",)),))
    cert, anchor = host_cert_path(host), "/usr/local/share/ca-certificates/hive-cacert.crt"
    verify = f"openssl verify -CAfile {anchor} {cert}"
    assert hive.run(book, limit=host).exit_code == EXIT_OK  # the stage CA and a good certificate
    sh(pr, host, f"rm -f {cert}")
    real = ca_module._now
    with monkeypatch.context() as m:
        m.setattr(ca_module, "_now", lambda: real() + datetime.timedelta(hours=9))
        assert hive.run(book, limit=host).exit_code == EXIT_OK
    code, out = pr.docker_exec(host, verify)
    assert code != 0 and "not yet valid" in out, out  # what the host's TLS peers see
    predicted = hive.run(book, limit=host, check=True)  # was: ok, nothing to do
    assert [c.summary for o in predicted.outcomes for c in o.changes if "not valid yet" in c.summary], \
        predicted.changes()
    again = hive.run(book, limit=host)
    assert again.exit_code == EXIT_OK, again.text()
    assert f"file[{cert}]" in [c.ident for o in again.outcomes for c in o.changes], again.changes()
    assert sh(pr, host, verify).strip().endswith("OK")
    assert hive.run(book, limit=host).changed == 0
