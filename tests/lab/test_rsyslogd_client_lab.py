"""rsyslogd-client on a real hive: with hive_tls_logging, a message logged on the hive lands in the repository's
/var/log/services over TCP+TLS, both ends authenticated by the stage CA.

Site `hlog`, 10.95.0.0/24: one hive and one separate repository, setup-hosts' own steps in its order (hostsfile
too: the hive reaches the repository by its inventory name, the name its certificate must carry).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from hive_nornir.api import Hive
from hive_nornir.engine.outcome import OK
from hive_nornir.report.run_report import EXIT_OK
from hive_nornir.runbooks.setup_hosts import RUNBOOK as SETUP_HOSTS
from hive_nornir.tasks.logs.rsyslogd_client import CONFIG

pytestmark = pytest.mark.lab

TAGS = ["tls-certificate", "base", "hostsfile", "iptables", "rsyslogd", "rsyslogd-client"]
WATCHED = "/etc/rsyslog.d /etc/rsyslog.conf /var/lib/dpkg/status /etc/pki /etc/hosts"


def fingerprint(lab: Any) -> dict[str, str]:
    """Hashes of the files these steps touch, per host, and whether rsyslog runs (observed via docker exec)."""
    return {h: lab.docker_exec(h, f"find {WATCHED} -type f 2>/dev/null | sort | xargs -r md5sum; "
                                  "systemctl is-active rsyslog")[1] for h in lab.hosts}


def wait_for_line(lab: Any, host: str, path: str, text: str) -> str:
    """Poll a file on the host until it holds `text` (at most 100 x 0.2 s inside one exec); return its content."""
    _, out = lab.docker_exec(host, f"for i in $(seq 100); do grep -qF {text} {path} 2>/dev/null && break; "
                                   f"sleep 0.2; done; cat {path} 2>&1")
    return out


def test_hive_logs_reach_the_repository_over_tls(make_lab) -> None:  # type: ignore[no-untyped-def]
    lab = make_lab("hlog", "10.95.0.0/24", 2, separate=True, group_vars="hive_tls_logging: true\n")
    hive_name, repo_name = lab.hosts
    hive = Hive(lab.root, stage="private")
    t0 = time.monotonic()
    report = hive.run(SETUP_HOSTS, tags=TAGS)
    print(f"first run (tls-certificate, base, hostsfile, iptables, rsyslogd, rsyslogd-client): "
          f"{time.monotonic() - t0:.1f} s")
    assert report.exit_code == EXIT_OK, report.text()
    client = [o for o in report.outcomes if o.step == "rsyslogd-client"]
    assert [o.host for o in client] == [hive_name]  # hives only
    assert client[0].changes
    assert any(o.host == hive_name and "restart:rsyslog" in o.handlers_run for o in report.outcomes)
    _, conf = lab.docker_exec(hive_name, f"cat {CONFIG}")
    assert f'target="{repo_name}"' in conf and f'StreamDriverPermittedPeers="{repo_name}"' in conf

    marker = f"hlog-{uuid.uuid4().hex}"
    rc, out = lab.docker_exec(hive_name, f"logger -p local0.info -t hivetest {marker}")
    assert rc == 0, out
    got = wait_for_line(lab, repo_name, "/var/log/services/hivetest.log", marker)
    assert f" {hive_name.split('.')[0]} hivetest: {marker}" in got, got  # sent by the hive, kept by the repository
    # it came over TLS from the hive: the collector's only input is imtcp with gtls, and the hive holds the
    # established connection to the repository's 10514
    _, conns = lab.docker_exec(hive_name, "ss -Htn state established '( dport = :10514 )'")
    repo_ip = lab.state["hosts"][repo_name]["private_ip"]
    assert f"{repo_ip}:10514" in conns, conns
    _, services = lab.docker_exec(repo_name, "cat /etc/rsyslog.d/services.conf")
    assert 'StreamDriver.Name="gtls"' in services and "imudp" not in services

    before = fingerprint(lab)
    again = hive.run(SETUP_HOSTS, tags=TAGS)
    assert again.exit_code == EXIT_OK and again.changed == 0, again.changes()
    assert all(o.status == OK for o in again.outcomes)
    assert fingerprint(lab) == before
    assert hive.run(SETUP_HOSTS, tags=TAGS, check=True).changed == 0
