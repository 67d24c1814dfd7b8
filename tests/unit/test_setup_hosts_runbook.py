"""The setup-hosts runbook follows hive-builder's setup-hosts.yml: role order, host groups, conditions and tags."""

from __future__ import annotations

from typing import Any

import pytest

from hive_nornir.runbooks.setup_hosts import RUNBOOK

# hive-builder's plays in order (reference/hive-builder.md section 3), as (step, groups, play tag, condition var).
# Not steps here: get-public-ip (shared repository only) and reboot (deliberately: changes are applied live).
# http-proxy is base's setup_proxy_env part, run before base; sshd carries the sshd edits of base, users
# and strict-source-ip.
EXPECTED: list[tuple[str, tuple[str, ...], str, str | None]] = [
    ("ssh-connection", ("servers",), "setup-hosts", None),
    ("tls-certificate", ("servers",), "setup-hosts", None),
    ("http-proxy", ("servers",), "setup-hosts", "hive_http_proxy"),
    ("base", ("servers",), "setup-hosts", None),
    ("hostsfile", ("servers",), "setup-hosts", None),
    ("ntp-client", ("servers",), "setup-hosts", "hive_ntp_servers"),
    ("iptables", ("servers",), "setup-hosts", None),
    ("pip-venv", ("servers",), "setup-hosts", None),
    ("addon", ("servers",), "setup-hosts", None),
    ("internal-network", ("servers",), "setup-hosts", "hive_internal_net_if"),
    ("users", ("servers",), "setup-hosts", "hive_users"),
    ("strict-source-ip", ("servers",), "setup-hosts", "hive_ssh_source_ips"),
    ("sshd", ("servers",), "setup-hosts", None),
    ("docker", ("servers",), "setup-hosts", None),
    ("drbd", ("servers",), "setup-hosts", None),
    ("docker-client", ("servers",), "setup-hosts", None),
    ("docker-client-proxy", ("servers",), "setup-hosts", None),
    ("follow-swarm-service", ("hives",), "setup-hosts", None),
    ("zabbix-agent", ("servers",), "setup-hosts", "hive_zabbix"),
    ("rsyslogd-client", ("hives",), "setup-hosts", "hive_tls_logging"),
    ("zabbix", ("repository",), "repository", "hive_zabbix"),
    ("registry", ("repository",), "repository", None),
    ("backup-tools", ("repository",), "repository", None),
    ("rsyslogd", ("repository",), "repository", None),
    ("swarm-init", ("first_hive",), "build-cluster", None),
    ("swarm-join", ("hives",), "build-cluster", None),
    ("addon2", ("servers",), "beforeend-setup-hosts", None),
]


def test_steps_run_in_hive_builders_order_on_its_groups() -> None:
    assert [(s.name, s.groups) for s in RUNBOOK.steps] == [(n, g) for n, g, _t, _c in EXPECTED]


@pytest.mark.parametrize(("name", "play"), [(n, t) for n, _g, t, _c in EXPECTED])
def test_every_step_carries_its_role_and_play_tags(name: str, play: str) -> None:
    step = next(s for s in RUNBOOK.steps if s.name == name)
    role = "swarm" if name.startswith("swarm-") else name
    assert role in step.tags and play in step.tags


def test_sshd_answers_the_tags_of_the_roles_whose_sshd_edits_it_carries() -> None:
    sshd = next(s for s in RUNBOOK.steps if s.name == "sshd")
    assert {"base", "users", "strict-source-ip"} <= set(sshd.tags)


@pytest.mark.parametrize(("name", "var"), [(n, c) for n, _g, _t, c in EXPECTED if c])
def test_conditional_steps_run_only_when_the_site_sets_their_variable(name: str, var: str) -> None:
    step = next(s for s in RUNBOOK.steps if s.name == name)
    assert step.when is not None
    unset: dict[str, Any] = {}
    assert not step.when(unset)  # type: ignore[arg-type]
    assert not step.when({var: []})  # type: ignore[arg-type]  # empty means unset, as Ansible's `when: x` on []
    assert step.when({var: ["x"] if var.endswith(("servers", "ips")) else True})  # type: ignore[arg-type]


def test_unconditional_steps_have_no_condition_except_drbd() -> None:
    """drbd decides per host (mirrored disk or prepared/kickstart provider); the rest run on every host of the group."""
    plain = {n for n, _g, _t, c in EXPECTED if c is None} - {"drbd"}
    assert [s.name for s in RUNBOOK.steps if s.name in plain and s.when is not None] == []
