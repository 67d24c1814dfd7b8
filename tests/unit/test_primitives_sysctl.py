"""Sysctl: running and persisted values planned from canned output; persist commands run on a temp file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from probe_runner import run_probe

from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.sysctl import Sysctl

FAMILIES = [canned("debian"), canned("redhat")]



def apply_file_commands(commands: list[str]) -> None:
    """Run the persist commands for real (the temp file only); never `sysctl -w` on this machine."""
    for command in commands:
        if command.startswith("sysctl "):
            continue
        subprocess.run(["/bin/sh", "-ec", command], check=True)


@pytest.mark.parametrize("facts", FAMILIES)
def test_probe_reads_proc_sys_and_persist_file(facts: Facts) -> None:
    probe = Sysctl("net.core.somaxconn", 4096).probe(facts)
    assert "/proc/sys/net/core/somaxconn" in probe and "/etc/sysctl.d/99-hive.conf" in probe
    assert "sysctl -w" not in probe


@pytest.mark.parametrize("facts", FAMILIES)
def test_plan_sets_and_persists(facts: Facts) -> None:
    plan = Sysctl("net.core.somaxconn", 4096).plan(facts, "current=128")
    assert plan.commands[0] == "sysctl -q -w net.core.somaxconn=4096"
    assert len(plan.commands) == 2 and "/etc/sysctl.d/99-hive.conf" in plan.commands[1]
    assert plan.diff.splitlines()[:2] == ["- net.core.somaxconn = 128", "+ net.core.somaxconn = 4096"]
    assert plan.summary.startswith("sysctl net.core.somaxconn = 4096 (was 128)")


@pytest.mark.parametrize("facts", FAMILIES)
def test_no_change_when_running_and_persisted(facts: Facts) -> None:
    out = "current=4096\npersisted=vm.swappiness = 10\npersisted=net.core.somaxconn=4096"
    assert not Sysctl("net.core.somaxconn", 4096).plan(facts, out).changed


def test_only_persist_when_running_value_is_right() -> None:
    out = "current=4096\npersisted=net.core.somaxconn = 1024"
    plan = Sysctl("net.core.somaxconn", "4096").plan(canned(), out)
    assert len(plan.commands) == 1 and plan.commands[0].startswith("mkdir -p /etc/sysctl.d;")
    assert plan.diff == "+ /etc/sysctl.d/99-hive.conf: net.core.somaxconn = 4096\n"


def test_whitespace_in_values_is_normalised() -> None:
    out = "current=32768\t60999\npersisted=net.ipv4.ip_local_port_range = 32768   60999"
    assert not Sysctl("net.ipv4.ip_local_port_range", "32768 60999").plan(canned(), out).changed


def test_persist_none_only_sets_running_value() -> None:
    sysctl = Sysctl("vm.swappiness", 10, persist_file=None)
    assert "persisted" not in sysctl.probe(canned())
    assert sysctl.plan(canned(), "current=60").commands == ["sysctl -q -w vm.swappiness=10"]


def test_unknown_key_is_missing() -> None:
    plan = Sysctl("net.netfilter.nf_conntrack_max", 262144).plan(canned(), "current=MISSING")
    assert "does not exist" in plan.missing and not plan.commands


@pytest.mark.parametrize("kwargs", [{"name": "net core", "value": 1}, {"name": "a;b", "value": 1},
                                    {"name": "x.y", "value": "1\n2"}, {"name": "x.y", "value": ""},
                                    {"name": "../x", "value": 1}])
def test_bad_input(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Sysctl(**kwargs)


def test_real_probe_and_persist_round_trip(tmp_path: Path) -> None:
    conf = tmp_path / "sysctl.d" / "99-hive.conf"
    facts = canned()
    ostype = Sysctl("kernel.ostype", "Linux", persist_file=str(conf))
    plan = ostype.plan(facts, run_probe(ostype, facts))
    assert plan.commands and not any(c.startswith("sysctl") for c in plan.commands)  # running value is right
    apply_file_commands(plan.commands)
    assert conf.read_text() == "kernel.ostype = Linux\n"
    assert not ostype.plan(facts, run_probe(ostype, facts)).changed

    # a second key shares the file; an unterminated last line and a slash spelling must not break it
    conf.write_text("kernel.ostype = Linux\n# keep me\nnet/core/somaxconn=1")
    current = Path("/proc/sys/net/core/somaxconn").read_text().strip()
    somax = Sysctl("net.core.somaxconn", current, persist_file=str(conf))
    plan = somax.plan(facts, run_probe(somax, facts))
    assert plan.changed and not any(c.startswith("sysctl") for c in plan.commands)
    apply_file_commands(plan.commands)
    # sed keeps the missing final newline as it was
    assert conf.read_text() == f"kernel.ostype = Linux\n# keep me\nnet.core.somaxconn = {current}"
    assert not somax.plan(facts, run_probe(somax, facts)).changed
    assert not ostype.plan(facts, run_probe(ostype, facts)).changed

    # appending a new key after a file that lacks a final newline
    conf.write_text("# only a comment")
    apply_file_commands(somax.plan(facts, run_probe(somax, facts)).commands)
    assert conf.read_text() == f"# only a comment\nnet.core.somaxconn = {current}\n"


def test_real_probe_reads_whole_multi_value_key() -> None:
    """/proc/sys int files answer only at offset 0; the probe must still see every digit and both values."""
    path = Path("/proc/sys/net/ipv4/ip_local_port_range")
    if not path.exists():
        pytest.skip("no ip_local_port_range in this network namespace")
    current = " ".join(path.read_text().split())
    same = Sysctl("net.ipv4.ip_local_port_range", current, persist_file=None)
    assert not same.plan(canned(), run_probe(same, canned())).changed
    other = Sysctl("net.ipv4.ip_local_port_range", "1024 65000", persist_file=None)
    assert other.plan(canned(), run_probe(other, canned())).diff.startswith(
        f"- net.ipv4.ip_local_port_range = {current}\n")
