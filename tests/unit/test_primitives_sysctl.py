"""Sysctl: running and persisted values planned from canned output; persist commands run on a temp file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from plan_cases import DEB, RH, Case, check_case, ids, on
from probe_runner import run_probe

from hive_nornir.facts import Facts, canned
from hive_nornir.primitives.sysctl import Sysctl

FAMILIES = [DEB, RH]



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


def persist(line: str, path: str = "/etc/sysctl.d/99-hive.conf") -> str:
    """The persist command for net.core.somaxconn: replace its line in place, else append it (after a newline)."""
    key = "^[[:space:]]*-?net[./]core[./]somaxconn[[:space:]]*="
    return (f"mkdir -p /etc/sysctl.d; if grep -Eq '{key}' {path} 2>/dev/null; "
            f"then sed -i -E 's|{key}.*$|{line}|' {path}; "
            f"else if test -s {path} && [ -n \"$(tail -c1 {path})\" ]; then echo >> {path}; fi; "
            f"printf '%s\\n' '{line}' >> {path}; fi")


CASES = [
    *on(FAMILIES, Case("sets-and-persists", Sysctl("net.core.somaxconn", 4096), "current=128",
                       commands=["sysctl -q -w net.core.somaxconn=4096", persist("net.core.somaxconn = 4096")],
                       summary="sysctl net.core.somaxconn = 4096 (was 128); persist in /etc/sysctl.d/99-hive.conf",
                       diff="- net.core.somaxconn = 128\n+ net.core.somaxconn = 4096\n"
                            "+ /etc/sysctl.d/99-hive.conf: net.core.somaxconn = 4096\n")),
    *on(FAMILIES, Case("no-change-when-running-and-persisted", Sysctl("net.core.somaxconn", 4096),
                       "current=4096\npersisted=vm.swappiness = 10\npersisted=net.core.somaxconn=4096")),
    Case("only-persist-when-the-running-value-is-right", Sysctl("net.core.somaxconn", "4096"),
         "current=4096\npersisted=net.core.somaxconn = 1024", commands=[persist("net.core.somaxconn = 4096")],
         summary="sysctl persist in /etc/sysctl.d/99-hive.conf",
         diff="+ /etc/sysctl.d/99-hive.conf: net.core.somaxconn = 4096\n"),
    Case("whitespace-in-values-is-normalised", Sysctl("net.ipv4.ip_local_port_range", "32768 60999"),
         "current=32768\t60999\npersisted=net.ipv4.ip_local_port_range = 32768   60999"),
    Case("persist-none-only-sets-the-running-value", Sysctl("vm.swappiness", 10, persist_file=None), "current=60",
         commands=["sysctl -q -w vm.swappiness=10"], summary="sysctl vm.swappiness = 10 (was 60)",
         diff="- vm.swappiness = 60\n+ vm.swappiness = 10\n"),
    Case("unknown-key-is-missing", Sysctl("net.netfilter.nf_conntrack_max", 262144), "current=MISSING",
         missing="sysctl net.netfilter.nf_conntrack_max does not exist on this kernel "
                 "(/proc/sys/net/netfilter/nf_conntrack_max)"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_plan(case: Case) -> None:
    check_case(case)


def test_persist_none_never_reads_a_file() -> None:
    assert "persisted" not in Sysctl("vm.swappiness", 10, persist_file=None).probe(canned())


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
