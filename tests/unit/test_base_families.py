"""base on both OS families, planned offline: canned facts and site vars in, exact commands and files out."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_host import plan_task

from hive_nornir.facts import canned
from hive_nornir.tasks.host.base import base
from hive_nornir.tasks.host.base_el import mirror_sed
from hive_nornir.tasks.host.base_env import locale_names

ALMA = canned("redhat", kernel="5.14.0-427.13.1.el9_4.x86_64")
DEBIAN = canned("debian")
ALMA_REPO = ("[baseos]\nname=AlmaLinux $releasever - BaseOS\n"
             "mirrorlist=https://mirrors.almalinux.org/mirrorlist/$releasever/baseos\n"
             "# baseurl=https://repo.almalinux.org/almalinux/$releasever/BaseOS/$basearch/os/\nenabled=1\n")


def test_el_packages_use_dnf_and_the_el_names() -> None:
    plan = plan_task(base, ALMA)
    assert ("dnf install -y wget unzip sysstat strace tcpdump lsof bash-completion tzdata sudo chrony rsyslog "
            "vim-enhanced telnet conntrack-tools python3-libselinux glibc-langpack-en rsyslog-logrotate openssl "
            "ca-certificates") in plan.commands
    assert not any("apt-get" in c for c in plan.commands)


def test_debian_packages_use_apt_and_never_touch_selinux_or_dnf() -> None:
    plan = plan_task(base, DEBIAN)
    installs = [c for c in plan.commands if "apt-get install" in c]
    assert len(installs) == 1 and installs[0].endswith(
        "wget unzip sysstat strace tcpdump lsof bash-completion tzdata sudo chrony rsyslog vim-tiny telnet "
        "conntrack locales logrotate openssl ca-certificates")
    assert not any(p in plan.files for p in ("/etc/selinux/config", "/etc/dnf/dnf.conf"))
    assert not any("dnf" in c or "setenforce" in c for c in plan.commands)


def test_chrony_is_left_to_ntp_client_when_the_site_names_servers() -> None:
    """Installed by base, chronyd would start on the distribution's public pool before ntp-client configures it."""
    plan = plan_task(base, DEBIAN, host_vars={"hive_ntp_servers": ["10.0.0.1"]})
    install = next(c for c in plan.commands if "apt-get install" in c)
    assert " chrony " not in install and " rsyslog " in install


def test_el_excludes_kernel_updates_in_dnf_conf() -> None:
    plan = plan_task(base, ALMA, files={"/etc/dnf/dnf.conf": "[main]\ngpgcheck=1\n"})
    assert plan.files["/etc/dnf/dnf.conf"] == "[main]\ngpgcheck=1\nexclude=kernel*\n"


@pytest.mark.parametrize(("before", "after"), [
    ("[main]\ngpgcheck=1\nexclude=foo*\n", "[main]\ngpgcheck=1\nexclude=foo* kernel*\n"),
    ("[main]\nexclude=foo*, bar\nbest=True\n", "[main]\nexclude=foo*, bar, kernel*\nbest=True\n"),
    ("[main]\nexclude=\n", "[main]\nexclude=kernel*\n"),
    ("[main]\ngpgcheck=1\n\n[local]\nexclude=x\n", "[main]\ngpgcheck=1\nexclude=kernel*\n\n[local]\nexclude=x\n"),
    ("", "[main]\nexclude=kernel*\n"),
])
def test_el_adds_kernel_to_the_sites_own_excludes(before: str, after: str) -> None:
    """hive-builder's `lineinfile ^exclude=` replaced `exclude=foo*`; the site's excludes stay, kernel* joins."""
    plan = plan_task(base, ALMA, files={"/etc/dnf/dnf.conf": before})
    assert plan.files["/etc/dnf/dnf.conf"] == after
    again = plan_task(base, ALMA, files={"/etc/dnf/dnf.conf": after})
    assert "/etc/dnf/dnf.conf" not in again.files
    present = plan_task(base, ALMA, files={"/etc/dnf/dnf.conf": "[main]\nexclude=kernel* foo\n"})
    assert "/etc/dnf/dnf.conf" not in present.files


def test_el_hives_pin_the_running_kernel_with_its_extra_modules() -> None:
    plan = plan_task(base, ALMA, groups=("servers", "hives"))
    k = "5.14.0-427.13.1.el9_4.x86_64"
    assert (f"dnf install -y --disableexcludes=main kernel-{k} kernel-modules-extra-{k}") in plan.commands


def test_el_kernel_version_from_the_site_wins_and_the_repository_is_left_alone() -> None:
    pinned = plan_task(base, ALMA, host_vars={"hive_kernel_version": "4.18.0-553.5.1.el8_10"})
    assert any("kernel-modules-extra-4.18.0-553.5.1.el8_10" in c for c in pinned.commands)
    repo = plan_task(base, ALMA, groups=("servers", "repository"))
    assert not any("kernel-" in c for c in repo.commands)


def test_el_selinux_defaults_to_permissive_persisted_and_live() -> None:
    plan = plan_task(base, ALMA, files={"/etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n"})
    assert plan.files["/etc/selinux/config"] == "SELINUX=permissive\nSELINUXTYPE=targeted\n"
    assert "setenforce 0" in plan.commands
    assert "dnf install -y selinux-policy-devel" in plan.commands


def test_el_selinux_disabled_skips_the_devel_policy_and_setenforce() -> None:
    plan = plan_task(base, ALMA, host_vars={"hive_selinux": "disabled"},
                     files={"/etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n"})
    assert plan.files["/etc/selinux/config"].startswith("SELINUX=disabled\n")
    assert not any("selinux-policy-devel" in c or "setenforce" in c for c in plan.commands)


def test_el_yum_mirror_rewrite_command_per_repo_file() -> None:
    url = "http://ftp.iij.ad.jp/pub/linux/almalinux"
    plan = plan_task(base, ALMA, host_vars={"hive_yum_url": url})
    program = mirror_sed(url)
    assert f"sed -i -E '{program}' /etc/yum.repos.d/almalinux-baseos.repo" in plan.commands
    assert ("sed -i -E 's/^enabled=.*/enabled=0/' /etc/yum/pluginconf.d/fastestmirror.conf") in plan.commands


def test_yum_mirror_program_rewrites_like_hive_builder_and_is_idempotent(tmp_path: Path) -> None:
    import subprocess

    repo = tmp_path / "almalinux-baseos.repo"
    repo.write_text(ALMA_REPO)
    program = mirror_sed("http://ftp.iij.ad.jp/pub/linux/almalinux/")
    once = subprocess.run(["sed", "-E", program, str(repo)], capture_output=True, text=True, check=True).stdout
    assert once == ("[baseos]\nname=AlmaLinux $releasever - BaseOS\n"
                    "#mirrorlist=https://mirrors.almalinux.org/mirrorlist/$releasever/baseos\n"
                    "baseurl=http://ftp.iij.ad.jp/pub/linux/almalinux/$releasever/BaseOS/$basearch/os/\nenabled=1\n")
    repo.write_text(once)
    twice = subprocess.run(["sed", "-E", program, str(repo)], capture_output=True, text=True, check=True).stdout
    assert twice == once


def test_proxy_and_pip_environment_when_the_site_sets_them() -> None:
    plan = plan_task(base, ALMA, name="p-hive0.pdns",
                     host_vars={"hive_http_proxy": "localhost:3128", "hive_private_ip": "192.168.0.5",
                                "hive_pip_index_url": "http://pypi.local/simple",
                                "hive_pip_trusted_host": "pypi.local"},
                     stage_hosts={"p-hive0.pdns": None, "p-hive1.pdns": None})
    assert plan.files["/etc/environment"] == (
        "http_proxy=http://192.168.0.5:3128\nhttps_proxy=http://192.168.0.5:3128\n"
        "HTTP_PROXY=http://192.168.0.5:3128\nHTTPS_PROXY=http://192.168.0.5:3128\n"
        "no_proxy=localhost,127.0.0.1,p-hive0.pdns,p-hive1.pdns\nNO_PROXY=localhost,127.0.0.1,p-hive0.pdns,p-hive1.pdns\n"
        "PIP_CERT=/etc/pki/ca-trust/source/anchors/cacert.pem\n"
        "PIP_INDEX_URL=http://pypi.local/simple\nPIP_TRUSTED_HOST=pypi.local\n")


def test_no_environment_file_without_proxy_or_index() -> None:
    assert "/etc/environment" not in plan_task(base, DEBIAN).files


def test_locale_on_el_installs_the_langpack_and_sets_lang() -> None:
    plan = plan_task(base, ALMA, host_vars={"hive_locale": "ja_JP.utf8"})
    assert "dnf install -y langpacks-ja" in plan.commands
    assert plan.files["/etc/locale.conf"] == "LANG=ja_JP.utf8\n"


def test_locale_on_debian_generates_it_then_sets_lang() -> None:
    gen = "# en_US.UTF-8 UTF-8\n# ja_JP.EUC-JP EUC-JP\n# ja_JP.UTF-8 UTF-8\n"
    plan = plan_task(base, DEBIAN, host_vars={"hive_locale": "ja_JP.utf8"}, files={"/etc/locale.gen": gen})
    assert plan.files["/etc/locale.gen"] == "# en_US.UTF-8 UTF-8\n# ja_JP.EUC-JP EUC-JP\nja_JP.UTF-8 UTF-8\n"
    assert "locale-gen" in plan.commands
    assert plan.files["/etc/default/locale"] == "LANG=ja_JP.utf8\n"


def test_locale_names_accept_hive_builder_spellings() -> None:
    assert locale_names("ja_JP.utf8") == ("ja_JP.utf8", "ja_JP.UTF-8 UTF-8")
    assert locale_names("LANG=ja_JP.UTF-8") == ("ja_JP.UTF-8", "ja_JP.UTF-8 UTF-8")


def test_cloud_init_hosts_keep_the_short_hostname() -> None:
    cloud = plan_task(base, canned("debian", cloud_init=True), files={"/etc/cloud/cloud.cfg": "users:\n- default\n"})
    assert cloud.files["/etc/cloud/cloud.cfg"] == "users:\n- default\npreserve_hostname: true\n"
    assert "/etc/cloud/cloud.cfg" not in plan_task(base, DEBIAN).files
    assert cloud.files["/etc/hostname"] == "p-hive0\n"


def test_bad_selinux_mode_is_a_clear_step_failure() -> None:
    import pytest

    from hive_nornir.engine.errors import StepFailed

    with pytest.raises(StepFailed, match="hive_selinux: 'strict' is not one of enforcing, permissive, disabled"):
        plan_task(base, ALMA, host_vars={"hive_selinux": "strict"})


def test_el_wait_online_drop_in_gets_its_directory_first() -> None:
    """A stock EL host has no NetworkManager-wait-online.service.d: the File alone would stop on a missing parent."""
    from hive_nornir.primitives.file import File
    from hive_nornir.primitives.filesystem import Directory
    from hive_nornir.tasks.host.base_el import dnf_service_primitives

    items = dnf_service_primitives()
    dirs = [i for i, p in enumerate(items) if isinstance(p, Directory)]
    files = [(i, p) for i, p in enumerate(items) if isinstance(p, File) and "wait-online" in p.path]
    assert dirs and files and dirs[0] < files[0][0]
    assert files[0][1].path.startswith(items[dirs[0]].path + "/")  # type: ignore[attr-defined]
