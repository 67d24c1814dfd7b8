"""Packages: apt/dpkg vs dnf/rpm planning from canned probe output (the table), and the real dpkg probe here."""

from __future__ import annotations

import shutil

import pytest
from plan_cases import DEB, RH, Case, check_case, ids
from probe_runner import run_probe

from hive_nornir.facts import canned
from hive_nornir.primitives.packages import Packages

INSTALL = ("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"
           " -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold")
UPDATE = ("apt-get update -q && mkdir -p /var/lib/apt/periodic"
          " && touch /var/lib/apt/periodic/update-success-stamp")
YUM = canned("redhat", pkg_manager="yum", os_version="7.9")

CASES = [
    # -- apt ----------------------------------------------------------------------------------------------------
    Case("deb-all-installed", Packages(["nginx", "curl"]),
         "pkg=nginx install ok installed\npkg=curl hold ok installed\nlists=yes"),
    Case("deb-installs-only-missing-fresh-cache", Packages(["nginx", "curl", "jq"]),
         "pkg=curl install ok installed\npkg=nginx deinstall ok config-files\nlists=yes\nfresh=yes",
         commands=[f"{INSTALL} nginx jq"], summary="install nginx, jq", diff="+ nginx\n+ jq\n"),
    *(Case(f"deb-updates-lists-first-when-{cache or 'no-lists'}", Packages(["nginx"]),
           f"pkg=nginx unknown ok not-installed\n{cache}", commands=[UPDATE, f"{INSTALL} nginx"])
      for cache in ("lists=yes", "fresh=yes", "")),
    Case("deb-update-cache-false-never-updates", Packages(["nginx"], update_cache=False), "",
         commands=[f"{INSTALL} nginx"]),
    Case("deb-absent-removes-only-installed", Packages(["telnet", "rsh-client"], state="absent"),
         "pkg=telnet install ok installed", commands=["DEBIAN_FRONTEND=noninteractive apt-get remove -y -q telnet"],
         summary="remove telnet"),
    Case("deb-absent-config-files-only-is-gone", Packages(["telnet", "rsh-client"], state="absent"),
         "pkg=telnet deinstall ok config-files"),
    Case("deb-latest-upgrades-a-newer-candidate", Packages(["openssl", "curl"], state="latest"),
         "pkg=openssl install ok installed\npkg=curl install ok installed\nlists=yes\nfresh=yes\n"
         "--candidates--\n"
         "openssl:\n  Installed: 3.0.11-1\n  Candidate: 3.0.13-1\n  Version table:\n"
         "curl:\n  Installed: 7.88.1-10\n  Candidate: 7.88.1-10\n",
         commands=[f"{INSTALL} openssl"], summary="upgrade openssl"),
    Case("unknown-package-manager-is-missing-not-guessed", Packages(["curl"]), "",
         facts=canned("debian", pkg_manager=""),
         missing="no supported package manager (apt, dnf, yum) on this host: none"),
    # -- dnf / yum ----------------------------------------------------------------------------------------------
    Case("el-installs-missing-with-dnf", Packages(["nginx", "curl"]),
         "pkg=nginx installed\npackage curl is not installed", facts=RH, commands=["dnf install -y curl"],
         summary="install curl"),
    Case("el-all-installed", Packages(["nginx", "curl"]), "pkg=nginx installed\npkg=curl installed", facts=RH),
    Case("el7-installs-with-yum", Packages(["curl"]), "package curl is not installed", facts=YUM,
         commands=["yum install -y curl"]),
    Case("el-absent-removes", Packages(["curl"], state="absent"), "pkg=curl installed", facts=RH,
         commands=["dnf remove -y curl"]),
    Case("el-latest-reads-dnf-upgrades", Packages(["bash", "curl"], state="latest"),
         "pkg=bash installed\npkg=curl installed\n--candidates--\nAvailable Upgrades\n"
         "bash.x86_64    5.1.8-9.el9    baseos\n", facts=RH, commands=["dnf install -y bash"]),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_plan(case: Case) -> None:
    check_case(case)


# -- probes: what they ask (they never change the host) --------------------------------------------------------

def test_debian_probe_queries_dpkg_and_cache_age() -> None:
    probe = Packages(["nginx", "curl"]).probe(DEB)
    assert "dpkg-query -W" in probe and "nginx curl" in probe
    assert "/var/lib/apt/lists" in probe and "-mmin -60" in probe
    assert "rpm" not in probe and "apt-get" not in probe  # a probe never installs or updates


def test_debian_update_cache_false_never_looks_at_the_lists() -> None:
    assert "/var/lib/apt/lists" not in Packages(["nginx"], update_cache=False).probe(DEB)


def test_debian_latest_asks_apt_cache_policy() -> None:
    assert "apt-cache policy openssl curl" in Packages(["openssl", "curl"], state="latest").probe(DEB)


def test_redhat_probe_uses_rpm() -> None:
    probe = Packages(["nginx", "curl"]).probe(RH)
    assert "rpm -q --qf" in probe and "dpkg" not in probe and "apt" not in probe


def test_redhat_latest_reads_dnf_upgrades_from_cache_only() -> None:
    assert "dnf -q -C list --upgrades bash curl" in Packages(["bash", "curl"], state="latest").probe(RH)


@pytest.mark.parametrize("kwargs", [{"names": ["-o", "x"]}, {"names": []}, {"names": ["a b"]},
                                    {"names": ["curl"], "state": "installed"}])
def test_bad_input_fails_at_construction(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Packages(**kwargs)


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs a Debian host to query dpkg")
def test_real_dpkg_probe_parses_on_this_host() -> None:
    pkgs = Packages(["coreutils", "hive-no-such-package"])
    out = run_probe(pkgs, DEB)
    assert "pkg=coreutils install ok installed" in out
    plan = pkgs.plan(DEB, out)
    assert plan.commands[-1] == f"{INSTALL} hive-no-such-package"
    assert plan.summary == "install hive-no-such-package"
    assert not Packages(["coreutils"]).plan(DEB, run_probe(Packages(["coreutils"]), DEB)).changed
