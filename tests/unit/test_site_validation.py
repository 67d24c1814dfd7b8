"""Site loading and every validation rule: each error names file, line, key, value and what is allowed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hive_nornir.site import SiteError, SiteIssue, find_site, load_site
from hive_nornir.site.loader import default_site_dir

FIXTURES = Path(__file__).parent / "fixtures"

BASE = """\
plugin: hive_inventory
name: pdns
stages:
  private:
    provider: vagrant
    cidr: 192.168.56.0/24
"""


def write_site(root: Path, text: str, files: dict[str, str] | None = None) -> Path:
    inv = root / "inventory"
    inv.mkdir(parents=True, exist_ok=True)
    path = inv / "hive.yml"
    path.write_text(textwrap.dedent(text))
    for rel, body in (files or {}).items():
        target = inv / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(body))
    return path


def issues(root: Path, text: str, files: dict[str, str] | None = None) -> list[SiteIssue]:
    path = write_site(root, text, files)
    with pytest.raises(SiteError) as info:
        load_site(path)
    return list(info.value.issues)


def stage_issues(root: Path, body: str, *, stage: str = "private", name: str = "pdns") -> list[SiteIssue]:
    indented = textwrap.indent(textwrap.dedent(body), "    ")
    return issues(root, f"plugin: hive_inventory\nname: {name}\nstages:\n  {stage}:\n{indented}")


def warned(root: Path, text: str, files: dict[str, str] | None = None) -> list[SiteIssue]:
    """The site loads with these warnings (hive-builder accepts it), and --strict refuses exactly those."""
    path = write_site(root, text, files)
    found = list(load_site(path).warnings)
    assert found and all(w.warning for w in found)
    with pytest.raises(SiteError) as info:
        load_site(path, strict=True)
    assert [(i.file, i.line, i.key) for i in info.value.issues] == [(w.file, w.line, w.key) for w in found]
    assert all(i.problem.endswith("(refused by --strict)") and not i.warning for i in info.value.issues)
    return found


def stage_warnings(root: Path, body: str, *, stage: str = "private", name: str = "pdns") -> list[SiteIssue]:
    indented = textwrap.indent(textwrap.dedent(body), "    ")
    return warned(root, f"plugin: hive_inventory\nname: {name}\nstages:\n  {stage}:\n{indented}")


def only(found: list[SiteIssue], key: str) -> SiteIssue:
    match = [i for i in found if i.key == key]
    assert len(match) == 1, f"expected one issue for {key}, got {[str(i) for i in found]}"
    return match[0]


# --- valid sites -----------------------------------------------------------------------------------


def test_hive_builder_pdns_site_loads_unchanged() -> None:
    site = load_site(FIXTURES / "site_pdns" / "inventory" / "hive.yml")
    assert site.name == "pdns"
    assert set(site.stages) == {"private", "staging", "production"}
    assert site.stages["staging"].number_of_hosts == 3  # from ip_address_list
    assert site.stages["private"].separate_repository is False
    assert site.stages["production"].subnets[1].name == "subnet-b"
    assert site.group_vars["servers"]["hive_timezone"] == "Asia/Tokyo"
    assert site.host_vars["hive3.pdns"] == {"hive_no_mirrored_device": True}
    assert site.root_dir == (FIXTURES / "site_pdns").resolve()


def test_default_site_loads_and_is_a_docker_lab(tmp_path: Path) -> None:
    path = find_site(tmp_path)  # a root without inventory/
    assert path == default_site_dir() / "hive.yml"
    site = load_site(path)
    private = site.stages["private"]
    assert (site.name, private.provider, private.cidr) == ("hivelab", "docker", "10.77.0.0/24")
    assert (private.number_of_hosts, private.separate_repository, private.mirrored_disk_size) == (4, True, 1)
    assert site.group_vars["all"]["hive_timezone"] == "Etc/UTC"


def test_find_site_prefers_the_users_own_site(tmp_path: Path) -> None:
    own = write_site(tmp_path, BASE)
    assert find_site(tmp_path) == own


def test_stage_defaults_follow_hive_builder(tmp_path: Path) -> None:
    site = load_site(write_site(tmp_path, BASE))
    stage = site.stages["private"]
    assert (stage.number_of_hosts, stage.separate_repository, stage.custom_hostname, stage.prefix) == (
        4, True, "hive", "p-")
    site = load_site(write_site(tmp_path, BASE + "    separate_repository: false\n"))
    assert site.stages["private"].number_of_hosts == 3


def test_root_password_is_not_in_repr(tmp_path: Path) -> None:
    text = BASE.replace("vagrant", "prepared") + "    root_password: s3cr3t\n"
    site = load_site(write_site(tmp_path, text))
    assert site.stages["private"].root_password == "s3cr3t"
    assert "s3cr3t" not in repr(site.stages["private"])


# --- file-level errors -----------------------------------------------------------------------------


def test_missing_file_is_reported_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(SiteError) as info:
        load_site(tmp_path / "inventory" / "hive.yml")
    assert str(info.value) == f"{tmp_path}/inventory/hive.yml: file not found; expected a YAML file"


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    found = issues(tmp_path, "plugin: hive_inventory\nname: pdns\nstages:\n  private: [1\n  staging: 2\n")
    assert len(found) == 1
    assert found[0].line == 5
    assert "YAML syntax error" in str(found[0])
    assert str(found[0]).startswith(f"{tmp_path}/inventory/hive.yml:5: ")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    found = issues(tmp_path, "- a\n- b\n")
    assert "must be a mapping" in str(found[0])


def test_duplicate_keys_warn_and_the_last_wins(tmp_path: Path) -> None:
    """Ansible's YAML loader warns and keeps the last value; so do we (--strict refuses)."""
    found = warned(tmp_path, BASE + "    cidr: 10.0.0.0/24\n")
    issue = only(found, "cidr")
    assert issue.line == 7 and issue.problem == "duplicate key: the last value wins, as in Ansible"
    assert load_site(tmp_path / "inventory" / "hive.yml").stages["private"].cidr == "10.0.0.0/24"


def test_top_level_keys(tmp_path: Path) -> None:
    found = issues(tmp_path, "plugin: hive_inventry\nname: 'bad name!'\nstagse: {}\n")
    assert str(only(found, "plugin")).endswith(
        "hive.yml:1: plugin: 'hive_inventry' is not allowed; expected one of hive_inventory")
    assert only(found, "name").line == 2
    assert "has an invalid format" in only(found, "name").problem
    assert "letters, digits, '.', '_' and '-'" in only(found, "name").allowed
    assert any(i.problem == "missing required key 'stages'" for i in found)
    assert "stagse" not in {i.key for i in found}  # an unknown key is a warning (below), not an error


def test_unknown_top_key_and_non_dns_name_warn(tmp_path: Path) -> None:
    found = warned(tmp_path, BASE.replace("name: pdns", "name: my_site") + "stagse: {}\n")
    assert only(found, "stagse").problem == "unknown key (did you mean 'stages'?), ignored as hive-builder does"
    name = only(found, "name")
    assert name.line == 2 and "is not a DNS name" in name.problem
    assert "a DNS name: labels of letters, digits and '-'" in name.allowed


def test_name_length_with_default_hostname(tmp_path: Path) -> None:
    long_name = "a" * 51
    found = issues(tmp_path, BASE.replace("name: pdns", f"name: {long_name}"))
    issue = only(found, "name")
    assert "too long" in issue.problem and issue.allowed == "at most 50 characters"


def test_empty_stages(tmp_path: Path) -> None:
    found = issues(tmp_path, "plugin: hive_inventory\nname: pdns\nstages: {}\n")
    assert only(found, "stages").problem == "is empty"


# --- stage rules -----------------------------------------------------------------------------------


def test_stage_name_must_be_known(tmp_path: Path) -> None:
    found = issues(tmp_path, BASE.replace("  private:", "  stagin:"))
    issue = only(found, "stages.stagin")
    assert issue.line == 4
    assert issue.problem == "is not a stage name (did you mean 'staging'?)"
    assert issue.allowed == "one of private, staging, production"


def test_provider_must_be_known_and_present(tmp_path: Path) -> None:
    found = stage_issues(tmp_path, "provider: virtualbox\ncidr: 10.0.0.0/24\n")
    issue = only(found, "stages.private.provider")
    assert issue.value == "virtualbox" and issue.line == 5
    assert "docker" in issue.allowed and "kickstart" in issue.allowed
    found = stage_issues(tmp_path, "cidr: 10.0.0.0/24\n")
    assert only(found, "stages.private").problem == "missing required key 'provider'"


def test_cidr_message_matches_the_documented_format(tmp_path: Path) -> None:
    found = stage_issues(tmp_path, "provider: vagrant\ncidr: 10.0.0.0/33\n")
    assert str(only(found, "stages.private.cidr")) == (
        f"{tmp_path}/inventory/hive.yml:6: stages.private.cidr: '10.0.0.0/33' is not a valid network; "
        "expected an IPv4 CIDR like 192.168.0.0/24")


def test_cidr_with_host_bits_is_refused(tmp_path: Path) -> None:
    found = stage_issues(tmp_path, "provider: vagrant\ncidr: 10.0.0.1/24\n")
    assert "host bits set (the network is 10.0.0.0/24)" in only(found, "stages.private.cidr").problem


def test_cidr_too_small_for_the_hosts(tmp_path: Path) -> None:
    found = stage_issues(tmp_path, "provider: vagrant\ncidr: 10.0.0.0/29\nnumber_of_hosts: 4\n")
    assert "has room for 3 hosts (the first 3 are reserved)" in only(found, "stages.private.cidr").problem


def test_unknown_stage_key_suggests_the_close_one(tmp_path: Path) -> None:
    found = stage_warnings(tmp_path, "provider: vagrant\ncidr: 10.0.0.0/24\nmirored_disk_size: 2\n")
    issue = only(found, "stages.private.mirored_disk_size")
    assert issue.line == 7
    assert issue.problem == "unknown key (did you mean 'mirrored_disk_size'?), ignored as hive-builder does"
    assert "internal_cidr_v6" in issue.allowed


@pytest.mark.parametrize(("provider", "key", "value"), [
    ("aws", "kickstart_config", "{iso_src: a, iso_dest: b}"),
    ("vagrant", "instance_type", "t3.large"),
    ("vagrant", "region", "ap-northeast-1"),
    ("aws", "repository_memory_size", "2048"),
    ("prepared", "dev", "eth0"),
    ("gcp", "bridge", "br0"),
    ("aws", "memory_size", "2048"),
    ("gcp", "memory_size", "2048"),
    ("azure", "memory_size", "2048"),
    ("aws", "prepared_resource_group", "true"),
    ("gcp", "not_support_az", "true"),
    ("aws", "image", "debian:12"),
    ("docker", "instance_type", "t3.large"),
    ("docker", "region", "eu-west-1"),
    ("docker", "repository_cpus", "2"),
])
def test_provider_restricted_keys(tmp_path: Path, provider: str, key: str, value: str) -> None:
    found = stage_issues(tmp_path, f"provider: {provider}\ncidr: 10.0.0.0/24\n{key}: {value}\n")
    issue = only(found, f"stages.private.{key}")
    assert issue.line == 7
    assert issue.problem == f"is not allowed with provider {provider!r}"
    assert issue.allowed.startswith("this key only with provider ")
    assert provider not in issue.allowed.removeprefix("this key only with provider ").split(", ")


@pytest.mark.parametrize(("provider", "extra"), [
    ("prepared", "memory_size: 2048"),
    ("kickstart", "memory_size: 2048\nkickstart_config: {iso_src: /a.iso, iso_dest: /b.iso}"),
    ("vagrant", "repository_memory_size: 2048\ndev: br0\nbridge: br1\ncpus: 2"),
    ("azure", "prepared_resource_group: true\nnot_support_az: false\ninstance_type: Standard_D2s_v3"),
    ("docker", "memory_size: 1024\ncpus: 1\nimage: hive-lab:latest"),
    ("aws", "instance_type: t3.large\nregion: ap-northeast-1\ncpus: 2\naz_suffix_list: ['-a']"),
])
def test_provider_allowed_keys(tmp_path: Path, provider: str, extra: str) -> None:
    text = BASE.replace("vagrant", provider) + textwrap.indent(extra + "\n", "    ")
    site = load_site(write_site(tmp_path, text))
    assert site.stages["private"].provider == provider


def test_shared_repository_needs_separate_repository(tmp_path: Path) -> None:
    found = stage_issues(tmp_path, "provider: aws\ncidr: 10.0.0.0/24\nseparate_repository: false\n"
                                   "shared_repository: {context_dir: /srv/repo}\n")
    issue = only(found, "stages.private.shared_repository")
    assert issue.line == 8 and issue.problem == "requires a separate repository"
    ok = write_site(tmp_path, BASE + "    shared_repository: {context_dir: /srv/repo, ssh_port: 2222}\n")
    assert load_site(ok).stages["private"].shared_repository == {"context_dir": "/srv/repo", "ssh_port": 2222}


def test_shared_repository_keys_are_checked(tmp_path: Path) -> None:
    found = stage_issues(tmp_path, "provider: aws\ncidr: 10.0.0.0/24\nshared_repository: {ssh_port: 0}\n")
    assert only(found, "stages.private.shared_repository.ssh_port").problem == "is out of range"
    assert only(found, "stages.private.shared_repository").problem == "missing required key 'context_dir'"


@pytest.mark.parametrize("bad", ["Hive", "-hive", "hive-", "h", "hi_ve"])
def test_custom_hostname_pattern(tmp_path: Path, bad: str) -> None:
    found = stage_issues(tmp_path, f"provider: vagrant\ncidr: 10.0.0.0/24\ncustom_hostname: '{bad}'\n")
    issue = only(found, "stages.private.custom_hostname")
    assert issue.value == bad and issue.problem == "has an invalid format"
    assert issue.allowed == ("at least 2 lower-case letters, digits and '-', starting and ending with a letter "
                             "or digit (e.g. web-hive)")
    assert str(issue).endswith(f"{bad!r} has an invalid format; expected {issue.allowed}")


def test_url_and_user_name_formats_say_what_is_allowed(tmp_path: Path) -> None:
    found = stage_issues(tmp_path, "provider: vagrant\ncidr: 10.0.0.0/24\ndrbd_download_url: ftp://x/y\n")
    assert only(found, "stages.private.drbd_download_url").allowed == (
        "an http://, https:// or file:// URL without spaces")
    found = issues(tmp_path, BASE, {"group_vars/all.yml": "hive_admin: 9admin\n"})
    assert only(found, "hive_admin").allowed.startswith("a Linux user name: up to 32 lower-case letters")


def test_custom_hostname_length_with_name(tmp_path: Path) -> None:
    name = "n" * 30
    found = stage_issues(tmp_path, f"provider: vagrant\ncidr: 10.0.0.0/24\ncustom_hostname: {'c' * 25}\n",
                         name=name)
    issue = only(found, "stages.private.custom_hostname")
    assert "too long together with the hive name" in issue.problem
    assert issue.allowed == "len(custom_hostname) + len(name) <= 54"
    site = load_site(write_site(tmp_path, BASE + f"    custom_hostname: {'c' * 50}\n"))  # 50 + 4 = 54
    assert site.stages["private"].custom_hostname == "c" * 50


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("number_of_hosts", "0", "is out of range"),
    ("number_of_hosts", "'3'", "is not an integer"),
    ("number_of_hosts", "true", "is not an integer"),
    ("disk_size", "-1", "is out of range"),
    ("mirrored_disk_size", "1.5", "is not an integer"),
    ("cpus", "0", "is out of range"),
    ("internal_cidr", "172.31.252.0/33", "is not a valid network"),
    ("internal_cidr_v6", "172.31.0.0/16", "is not a valid network"),
    ("subnets", "[]", "has 0 items"),
    ("ip_address_list", "10.0.0.5", "is not a list"),
    ("drbd_download_url", "not a url", "has an invalid format"),
])
def test_value_kinds(tmp_path: Path, key: str, value: str, problem: str) -> None:
    found = stage_issues(tmp_path, f"provider: vagrant\ncidr: 10.0.0.0/24\n{key}: {value}\n")
    issue = only(found, f"stages.private.{key}")
    assert issue.problem == problem and issue.line == 7 and issue.allowed


def test_quoted_false_means_true_as_in_hive_builder(tmp_path: Path) -> None:
    found = stage_warnings(tmp_path, "provider: vagrant\ncidr: 10.0.0.0/24\nseparate_repository: 'False'\n")
    issue = only(found, "stages.private.separate_repository")
    assert issue.problem == "is not a boolean; hive-builder tests it for truth, so it means True"
    stage = load_site(tmp_path / "inventory" / "hive.yml").stages["private"]
    assert stage.separate_repository is True and stage.number_of_hosts == 4


def test_one_host_with_a_separate_repository_warns(tmp_path: Path) -> None:
    found = stage_warnings(tmp_path, "provider: vagrant\ncidr: 10.0.0.0/24\nnumber_of_hosts: 1\n")
    assert "makes the only host the repository" in only(found, "stages.private.number_of_hosts").problem


def test_ip_address_list_rules(tmp_path: Path) -> None:
    found = stage_issues(tmp_path, "provider: prepared\ncidr: 10.0.0.0/24\nip_address_list:\n"
                                   "- 10.0.0.5\n- 10.0.0.300\n")
    assert only(found, "stages.private.ip_address_list[1]").problem == "is not a valid IPv4 address"
    assert only(found, "stages.private.ip_address_list[1]").line == 9
    found = stage_warnings(tmp_path / "dup", "provider: prepared\ncidr: 10.0.0.0/24\nip_address_list:\n"
                                             "- 10.0.0.5\n- 10.0.0.6\n- 10.0.0.5\n")
    dup = only(found, "stages.private.ip_address_list[2]")
    assert (dup.line, dup.value) == (10, "10.0.0.5")
    assert dup.problem == "is listed twice: two hosts get the same address (ip_address_list[0])"


def test_ip_address_list_inside_cidr_and_consistent_count(tmp_path: Path) -> None:
    found = stage_warnings(tmp_path, "provider: prepared\ncidr: 10.0.0.0/24\nnumber_of_hosts: 3\n"
                                     "ip_address_list: [10.0.0.5, 10.0.1.5]\n")
    outside = only(found, "stages.private.ip_address_list[1]")
    assert outside.problem.startswith("is outside cidr 10.0.0.0/24") and outside.line == 8
    count = only(found, "stages.private.number_of_hosts")
    assert count.problem.startswith("is ignored: hive-builder makes one host per address of ip_address_list (2)")
    assert count.allowed.startswith("2")


def test_ip_address_list_and_subnets_are_exclusive(tmp_path: Path) -> None:
    found = stage_warnings(tmp_path, "provider: aws\ncidr: 10.0.0.0/24\n"
                                     "ip_address_list: [10.0.0.5, 10.0.0.6]\nsubnets: [{cidr: 10.0.0.0/25}]\n")
    assert "only sets the number of hosts" in only(found, "stages.private.ip_address_list").problem


def test_subnet_rules(tmp_path: Path) -> None:
    text = """\
        provider: aws
        cidr: 10.0.0.0/24
        number_of_hosts: 5
        subnets:
        - cidr: 10.0.0.0/26
          name: a
        - cidr: 10.0.0.32/27
          name: a
        - cidr: 10.1.0.0/26
        - cidr: 10.0.0.192/29
        - name: nocidr
          availble_zone: x
        """
    found = stage_issues(tmp_path, text)
    assert [i.key for i in found] == ["stages.private.subnets[4]"]
    assert only(found, "stages.private.subnets[4]").problem == "missing required key 'cidr'"
    found = stage_warnings(tmp_path / "ok", text.replace("        - name: nocidr\n",
                                                         "        - cidr: 10.0.0.128/27\n"))
    assert only(found, "stages.private.subnets[1].name").problem == "is already used by subnets[0]"
    overlap = [i for i in found if i.key == "stages.private.subnets[1].cidr"]
    assert [i.problem for i in overlap] == ["overlaps subnets[0] 10.0.0.0/26: hosts may get the same address"]
    assert overlap[0].line == 11
    assert only(found, "stages.private.subnets[2].cidr").problem == "is outside cidr 10.0.0.0/24"
    assert not [i for i in found if i.key == "stages.private.subnets[3].cidr"]  # /29 holds its 1 host
    assert only(found, "stages.private.subnets[4].availble_zone").problem == (
        "unknown key (did you mean 'available_zone'?), ignored as hive-builder does")


def test_subnet_too_small(tmp_path: Path) -> None:
    assert load_site(write_site(tmp_path, BASE.replace("vagrant", "aws") + "    number_of_hosts: 4\n"
                                "    subnets: [{cidr: 192.168.56.0/29}, {cidr: 192.168.56.64/26}]\n"))
    text = ("provider: aws\ncidr: 10.0.0.0/24\nnumber_of_hosts: {}\n"
            "subnets: [{{cidr: 10.0.0.0/29}}, {{cidr: 10.0.0.64/26}}]\n")
    # a /29 has 6 host addresses, 4 are reserved: hosts 0 and 2 fit, host 4 does not
    found = stage_issues(tmp_path, text.format(5))
    issue = only(found, "stages.private.subnets[0].cidr")
    assert issue.problem == "has room for 2 hosts (the first 4 are reserved), but 3 are assigned to it"
    assert issue.line == 8


def test_internal_cidr_must_not_overlap_the_host_network(tmp_path: Path) -> None:
    found = stage_warnings(tmp_path, "provider: vagrant\ncidr: 172.31.0.0/16\ninternal_cidr: 172.31.252.0/22\n")
    assert only(found, "stages.private.internal_cidr").problem.startswith("overlaps the host network 172.31.0.0/16")


def test_kickstart_config_is_checked(tmp_path: Path) -> None:
    found = stage_issues(tmp_path, """\
        provider: kickstart
        cidr: 10.0.0.0/24
        number_of_hosts: 3
        kickstart_config:
          iso_src: /a.iso
          networks:
          - interface: eth0
            vlanid: 5000
            ips: [10.0.0.4, 10.0.0.5]
        """)
    assert only(found, "stages.private.kickstart_config").problem == "missing required key 'iso_dest'"
    assert only(found, "stages.private.kickstart_config.networks[0].vlanid").line == 12
    assert "stages.private.kickstart_config.networks[0].ips" not in {i.key for i in found}
    found = stage_warnings(tmp_path / "ok", """\
        provider: kickstart
        cidr: 10.0.0.0/24
        number_of_hosts: 3
        kickstart_config:
          iso_src: /a.iso
          iso_dest: /b.iso
          networks:
          - interface: eth0
            ips: [10.0.0.4, 10.0.0.5]
        """)
    assert "fewer addresses than the 3 hosts" in only(found, "stages.private.kickstart_config.networks[0].ips").problem


# --- Jinja -----------------------------------------------------------------------------------------


def test_jinja_in_hive_yml_is_rejected_once(tmp_path: Path) -> None:
    found = stage_issues(tmp_path, "provider: vagrant\ncidr: 10.0.0.0/24\nnumber_of_hosts: '{{ n }}'\n")
    assert len(found) == 1
    issue = found[0]
    assert (issue.key, issue.line, issue.value) == ("stages.private.number_of_hosts", 7, "{{ n }}")
    assert "Jinja expressions are not supported" in str(issue)


def test_jinja_in_group_vars_and_host_vars(tmp_path: Path) -> None:
    found = issues(tmp_path, BASE, {
        "group_vars/servers.yml": """\
            hive_timezone: UTC
            hive_ntp_servers: "{{ omit if hive_provider in ['aws'] else 'ntp.nict.jp' }}"
            """,
        "host_vars/p-hive0.pdns.yml": """\
            hive_ext_repositories:
              - login_user: x
                password: "{% raw %}x{% endraw %}"
            """,
    })
    gv = only(found, "hive_ntp_servers")
    assert gv.file == tmp_path / "inventory" / "group_vars" / "servers.yml" and gv.line == 2
    hv = only(found, "hive_ext_repositories[0].password")
    assert hv.file.name == "p-hive0.pdns.yml" and hv.line == 3
    assert "Jinja expressions are not supported" in hv.problem


def test_vars_files_are_checked(tmp_path: Path) -> None:
    found = issues(tmp_path, BASE, {
        "group_vars/all.yml": "hive_sshd_port: '2222'\nhive_admin: 'Bad User'\n",
        "group_vars/hives.yml": "- not a mapping\n",
    })
    assert only(found, "hive_sshd_port").problem == "is not an integer"
    assert only(found, "hive_admin").line == 2
    assert any("a vars file must be a mapping" in str(i) and i.file.name == "hives.yml" for i in found)


def test_setup_hosts_settings_are_checked_before_any_host_is_touched(tmp_path: Path) -> None:
    found = issues(tmp_path, BASE, {
        "group_vars/all.yml": "hive_locale: ja_JP.utf8\nhive_selinux: strict\nhive_ntp_servers: ntp.example\n",
        "host_vars/p-hive0.pdns.yml": "hive_swarm_mode: leader\n",
    })
    selinux = only(found, "hive_selinux")
    assert (selinux.line, selinux.problem) == (2, "is not allowed")
    assert "enforcing, permissive, disabled" in str(selinux)
    assert only(found, "hive_ntp_servers").line == 3
    assert "manager, worker" in str(only(found, "hive_swarm_mode"))


def test_wait_timeout_and_switches_are_checked(tmp_path: Path) -> None:
    found = issues(tmp_path, BASE, {
        "group_vars/all.yml": "hive_ssh_wait_timeout: 3600\nhive_zabbix: 'yes'\nhive_tls_logging: true\n",
    })
    wait = only(found, "hive_ssh_wait_timeout")
    assert wait.line == 1 and "1800" in str(wait)
    zabbix = only(found, "hive_zabbix")
    assert (zabbix.line, zabbix.problem) == (2, "is not a boolean")
    assert not [i for i in found if "hive_tls_logging" in str(i)]


def test_group_vars_directory_layout_is_merged(tmp_path: Path) -> None:
    site = load_site(write_site(tmp_path, BASE, {
        "group_vars/servers/a.yml": "x: 1\ny: 1\n",
        "group_vars/servers/b.yml": "y: 2\n",
    }))
    assert site.group_vars["servers"] == {"x": 1, "y": 2}


# --- many at once ----------------------------------------------------------------------------------


def test_all_errors_are_reported_at_once_one_per_line(tmp_path: Path) -> None:
    path = write_site(tmp_path, """\
        plugin: hive_inventory
        name: pdns
        stages:
          private:
            provider: vagrant
            cidr: 10.0.0.0/33
            region: x
          production:
            provider: aws
            cidr: 192.168.0.0/24
            memory_size: 1024
            separate_repository: 'no'
        """, {"group_vars/all.yml": "hive_sshd_port: 0\n"})
    with pytest.raises(SiteError) as info:
        load_site(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 4  # separate_repository: 'no' is a warning, not an error
    assert [i.line for i in info.value.issues] == [6, 7, 11, 1]
    assert lines[0].startswith(f"{path}:6: stages.private.cidr: ")
    assert lines[-1].startswith(f"{tmp_path}/inventory/group_vars/all.yml:1: hive_sshd_port: 0 is out of ")


# --- group_vars / host_vars names ------------------------------------------------------------------


TWO_STAGES = BASE + "  staging:\n    provider: prepared\n    cidr: 10.0.0.0/24\n    number_of_hosts: 2\n"


def test_vars_files_of_every_hive_builder_group_and_host_are_accepted(tmp_path: Path) -> None:
    groups = ["all", "hosts", "servers", "hives", "repository", "first_hive", "mother", "private", "staging",
              "production", "services"]  # production: a stage group the site does not define (yet)
    files = {f"group_vars/{g}.yml": f"x_{g}: 1\n" for g in groups}
    hosts = ["p-hive0.pdns", "p-hive3.pdns", "p-mother.pdns", "s-hive1.pdns", "s-mother.pdns"]
    files.update({f"host_vars/{h}.yml": "y: 1\n" for h in hosts})
    site = load_site(write_site(tmp_path, TWO_STAGES, files))
    assert set(site.group_vars) == set(groups)
    assert set(site.host_vars) == set(hosts)


def test_vars_file_matching_no_group_or_host_warns(tmp_path: Path) -> None:
    found = warned(tmp_path, TWO_STAGES, {
        "group_vars/hivse.yml": "hive_timezone: UTC\n",
        "group_vars/prodution/a.yml": "x: 1\n",
        "host_vars/p-hive4.pdns.yml": "x: 1\n",  # private has p-hive0..3
        "host_vars/hive0.pdns.yml": "x: 1\n",    # production is not defined
        "host_vars/s-hive1.pdns.yml": "x: 1\n",  # fine: a host of staging
    })
    gv = tmp_path / "inventory" / "group_vars"
    by_file = {i.file: i for i in found}
    assert set(by_file) == {gv / "hivse.yml", gv / "prodution", tmp_path / "inventory" / "host_vars" /
                            "p-hive4.pdns.yml", tmp_path / "inventory" / "host_vars" / "hive0.pdns.yml"}
    typo = by_file[gv / "hivse.yml"]
    assert typo.problem == "matches no group, so it never applies (did you mean 'hives'?)"
    assert "all, ungrouped, hosts, servers, hives, repository, first_hive" in typo.allowed
    assert str(typo).startswith(f"{gv / 'hivse.yml'}: matches no group")
    assert "did you mean 'production'?" in by_file[gv / "prodution"].problem
    host = by_file[tmp_path / "inventory" / "host_vars" / "p-hive4.pdns.yml"]
    assert host.problem.startswith("matches no host of any stage, so it never applies")
    assert host.allowed == ("a host name of the site: p-hive0.pdns .. p-hive3.pdns, p-mother.pdns, "
                            "s-hive0.pdns .. s-hive1.pdns, s-mother.pdns")


def test_group_vars_names_are_checked_even_when_hive_yml_is_broken(tmp_path: Path) -> None:
    path = write_site(tmp_path, BASE.replace("vagrant", "vagrnt"), {"group_vars/sever.yml": "x: 1\n",
                                                                  "host_vars/nohost.yml": "x: 1\n"})
    with pytest.raises(SiteError) as info:
        load_site(path, strict=True)
    found = list(info.value.issues)
    assert any(i.key == "stages.private.provider" for i in found)
    assert any(i.file.name == "sever.yml" and "did you mean 'server" in i.problem for i in found)
    assert not any(i.file.name == "nohost.yml" for i in found)  # host names need a valid hive.yml
