"""rsyslogd-client planned offline on both families: the exact forwarding config, packages, validation, step wiring."""

from __future__ import annotations

from typing import Any

import pytest
from fake_host import FakeStageHost, plan_task, stage_host

from hive_nornir.engine.errors import StepFailed
from hive_nornir.facts import canned
from hive_nornir.runbooks.setup_hosts import RUNBOOK
from hive_nornir.tasks.logs import rsyslogd_client as rc

DEBIAN = canned("debian")
ALMA = canned("redhat")
HIVE, REPO = "p-hive0.pdns", "p-hive1.pdns"


def repo_host() -> FakeStageHost:
    """A stage host in group repository (what the inventory gives the last server)."""
    return stage_host(REPO, "servers", "repository")


def hive_plan(facts: Any, **kw: Any) -> Any:
    """Plan the task on a fresh hive of stage pdns whose repository is p-hive1."""
    return plan_task(rc.rsyslogd_client, facts, name=HIVE, host_vars={"hive_tls_logging": True},
                     stage_hosts={HIVE: None, REPO: repo_host()}, **kw)


def test_debian_hive_forwards_everything_over_tls_to_the_repository() -> None:
    plan = hive_plan(DEBIAN)
    assert plan.files[rc.CONFIG] == (
        "# managed by hive_nornir (rsyslogd-client): every message to the repository's collector over TCP+TLS\n"
        'global(DefaultNetstreamDriverCAFile="/usr/local/share/ca-certificates/hive-cacert.crt"\n'
        '       DefaultNetstreamDriverCertFile="/etc/pki/tls/certs/p-hive0.pdns_cert.pem"\n'
        '       DefaultNetstreamDriverKeyFile="/etc/pki/tls/private/p-hive0.pdns_key.pem")\n'
        "# own queue: a collector that is down never stalls local logging (the queue drops when full)\n"
        '*.* action(type="omfwd" target="p-hive1.pdns" port="10514" protocol="tcp"\n'
        '           StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"\n'
        '           StreamDriverPermittedPeers="p-hive1.pdns"\n'
        '           queue.type="LinkedList" queue.size="10000" queue.timeoutEnqueue="0"\n'
        '           action.resumeRetryCount="-1")\n')
    assert any("apt-get install" in c and c.endswith(" rsyslog rsyslog-gnutls") for c in plan.commands)
    assert plan.notified == ["restart:rsyslog"]


def test_el_hive_installs_hive_builders_tls_packages_and_trusts_the_ca_anchor() -> None:
    plan = hive_plan(ALMA)
    assert "dnf install -y rsyslog rsyslog-gnutls rsyslog-openssl gnutls-utils" in plan.commands
    assert 'DefaultNetstreamDriverCAFile="/etc/pki/ca-trust/source/anchors/cacert.pem"' in plan.files[rc.CONFIG]


def test_config_is_validated_by_rsyslogd_before_it_lands() -> None:
    spec = rc.ClientSpec(host=HIVE, repository=REPO)
    conf = next(p for p in rc.client_primitives(DEBIAN, spec) if getattr(p, "path", "") == rc.CONFIG)
    assert conf.validate == "rsyslogd -N1 -f %s"  # type: ignore[attr-defined]


def test_a_hive_that_is_also_the_collector_leaves_the_tls_files_to_services_conf() -> None:
    """rsyslog rejects a global() file parameter given twice; services.conf names the same files on that host."""
    plan = plan_task(rc.rsyslogd_client, DEBIAN, name=REPO, groups=("servers", "hives", "repository"),
                     host_vars={"hive_tls_logging": True}, stage_hosts={HIVE: stage_host(HIVE), REPO: None})
    conf = plan.files[rc.CONFIG]
    assert "global(" not in conf and 'target="p-hive1.pdns"' in conf


def test_a_stage_without_repository_fails_with_the_reason() -> None:
    with pytest.raises(StepFailed, match="no repository server"):
        plan_task(rc.rsyslogd_client, DEBIAN, name=HIVE, stage_hosts={HIVE: None})


def test_setup_hosts_runs_it_on_hives_after_zabbix_agent_only_with_tls_logging() -> None:
    names = [s.name for s in RUNBOOK.steps]
    assert names.index("rsyslogd-client") == names.index("zabbix-agent") + 1
    step = RUNBOOK.steps[names.index("rsyslogd-client")]
    assert step.groups == ("hives",) and step.tags == ("rsyslogd-client", "setup-hosts")
    assert step.when is not None
    assert step.when({"hive_tls_logging": True}) and not step.when({})  # type: ignore[arg-type]
