"""Packages: apt/dpkg vs dnf/rpm planning from canned probe output, and the real dpkg probe on this host."""

from __future__ import annotations

import shutil

import pytest
from probe_runner import run_probe

from hive_nornir.facts import canned
from hive_nornir.primitives.packages import Packages

DEB, RH = canned("debian"), canned("redhat")
INSTALL = ("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"
           " -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold")
UPDATE = ("apt-get update -q && mkdir -p /var/lib/apt/periodic"
          " && touch /var/lib/apt/periodic/update-success-stamp")



def test_debian_probe_queries_dpkg_and_cache_age() -> None:
    probe = Packages(["nginx", "curl"]).probe(DEB)
    assert "dpkg-query -W" in probe and "nginx curl" in probe
    assert "/var/lib/apt/lists" in probe and "-mmin -60" in probe
    assert "rpm" not in probe and "apt-get" not in probe  # a probe never installs or updates


def test_debian_no_change_when_all_installed() -> None:
    out = "pkg=nginx install ok installed\npkg=curl hold ok installed\nlists=yes"
    assert not Packages(["nginx", "curl"]).plan(DEB, out).changed


def test_debian_installs_only_missing_with_fresh_cache() -> None:
    out = "pkg=curl install ok installed\npkg=nginx deinstall ok config-files\nlists=yes\nfresh=yes"
    plan = Packages(["nginx", "curl", "jq"]).plan(DEB, out)
    assert plan.changed
    assert plan.commands == [f"{INSTALL} nginx jq"]
    assert plan.summary == "install nginx, jq"
    assert plan.diff == "+ nginx\n+ jq\n"


@pytest.mark.parametrize("cache", ["lists=yes", "fresh=yes", ""])
def test_debian_updates_stale_or_missing_lists_first(cache: str) -> None:
    plan = Packages(["nginx"]).plan(DEB, f"pkg=nginx unknown ok not-installed\n{cache}")
    assert plan.commands == [UPDATE, f"{INSTALL} nginx"]


def test_debian_update_cache_false_never_updates() -> None:
    pkgs = Packages(["nginx"], update_cache=False)
    assert "/var/lib/apt/lists" not in pkgs.probe(DEB)
    assert pkgs.plan(DEB, "").commands == [f"{INSTALL} nginx"]


def test_debian_absent_removes_only_installed() -> None:
    pkgs = Packages(["telnet", "rsh-client"], state="absent")
    plan = pkgs.plan(DEB, "pkg=telnet install ok installed")
    assert plan.commands == ["DEBIAN_FRONTEND=noninteractive apt-get remove -y -q telnet"]
    assert plan.summary == "remove telnet"
    assert not pkgs.plan(DEB, "pkg=telnet deinstall ok config-files").changed


def test_debian_latest_upgrades_when_candidate_is_newer() -> None:
    pkgs = Packages(["openssl", "curl"], state="latest")
    assert "apt-cache policy openssl curl" in pkgs.probe(DEB)
    out = ("pkg=openssl install ok installed\npkg=curl install ok installed\nlists=yes\nfresh=yes\n"
           "--candidates--\n"
           "openssl:\n  Installed: 3.0.11-1\n  Candidate: 3.0.13-1\n  Version table:\n"
           "curl:\n  Installed: 7.88.1-10\n  Candidate: 7.88.1-10\n")
    plan = pkgs.plan(DEB, out)
    assert plan.commands == [f"{INSTALL} openssl"]
    assert plan.summary == "upgrade openssl"


def test_redhat_probe_uses_rpm_and_installs_with_dnf() -> None:
    pkgs = Packages(["nginx", "curl"])
    probe = pkgs.probe(RH)
    assert "rpm -q --qf" in probe and "dpkg" not in probe and "apt" not in probe
    plan = pkgs.plan(RH, "pkg=nginx installed\npackage curl is not installed")
    assert plan.commands == ["dnf install -y curl"]
    assert plan.summary == "install curl"
    assert not pkgs.plan(RH, "pkg=nginx installed\npkg=curl installed").changed


def test_redhat_yum_and_absent() -> None:
    yum = canned("redhat", pkg_manager="yum", os_version="7.9")
    assert Packages(["curl"]).plan(yum, "package curl is not installed").commands == ["yum install -y curl"]
    remove = Packages(["curl"], state="absent").plan(RH, "pkg=curl installed")
    assert remove.commands == ["dnf remove -y curl"]


def test_redhat_latest_reads_dnf_upgrades_from_cache_only() -> None:
    pkgs = Packages(["bash", "curl"], state="latest")
    assert "dnf -q -C list --upgrades bash curl" in pkgs.probe(RH)
    out = ("pkg=bash installed\npkg=curl installed\n--candidates--\nAvailable Upgrades\n"
           "bash.x86_64    5.1.8-9.el9    baseos\n")
    assert pkgs.plan(RH, out).commands == ["dnf install -y bash"]


def test_unknown_package_manager_is_missing_not_guessed() -> None:
    plan = Packages(["curl"]).plan(canned("debian", pkg_manager=""), "")
    assert plan.missing and not plan.commands


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
