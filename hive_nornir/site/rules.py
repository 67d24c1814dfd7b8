"""The rule tables of the site format: keys, kinds, defaults and which providers allow them."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from .errors import MISSING, Surprise
from .kinds import Address as Ip
from .kinds import (
    AnyOf,
    Bool,
    Choice,
    Int,
    Kind,
    ListOf,
    Mapping,
    NamedMap,
    Network,
    Obj,
    Problem,
    SshPublicKey,
    Str,
    TimeZone,
)

STAGE_NAMES: tuple[str, ...] = ("private", "staging", "production")
STAGE_PREFIX: dict[str, str] = {"private": "p-", "staging": "s-", "production": ""}
# Every group hive-builder's inventory plugins create (hive_inventory and hive_services) plus Ansible's
# built-ins: group_vars/<name>.yml must be one of them. Stage groups count even when the site does not define
# that stage yet (Ansible ignores their vars then, a typo like "prodution" is still caught).
HIVE_GROUPS: tuple[str, ...] = (
    "all", "ungrouped", "hosts", "servers", "hives", "repository", "first_hive", "mother", *STAGE_NAMES,
    "services", "images", "volumes", "drbd_volumes", "nfs_volumes", "networks",
)
HIVE_BUILDER_PROVIDERS: tuple[str, ...] = (
    "vagrant", "aws", "azure", "gcp", "openstack", "prepared", "kickstart",
)
LAB_PROVIDERS: tuple[str, ...] = ("docker",)  # hive_nornir's own, unknown to hive-builder
PROVIDERS: tuple[str, ...] = (*HIVE_BUILDER_PROVIDERS, *LAB_PROVIDERS)


def buildable_providers() -> tuple[str, ...]:
    """What build-infra implements, read from the provider registry (imported late: providers import the site)."""
    from hive_nornir.registry import supported_providers

    return tuple(supported_providers())


class ProviderName(Kind):
    """`provider:` is one hive-builder's inventory accepts or one build-infra builds; a typo names the buildable."""

    @property
    def expected(self) -> str:  # type: ignore[override]
        return (f"a provider build-infra builds: {', '.join(buildable_providers())} (hive-builder's "
                f"{', '.join(p for p in HIVE_BUILDER_PROVIDERS if p not in buildable_providers())} are accepted "
                "in the site, for hosts that already exist)")

    def accepted(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*HIVE_BUILDER_PROVIDERS, *buildable_providers())))

    def check(self, value: Any) -> list[Problem]:
        if isinstance(value, str) and value in self.accepted():
            return []
        return [((), "is not a provider" + suggest(value, list(self.accepted())), value, self.expected)]

    def schema(self) -> dict[str, Any]:
        return {"enum": list(self.accepted())}
IAAS_PROVIDERS: tuple[str, ...] = ("aws", "gcp", "azure")
DNS_NAME = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
DNS_NAME_TEXT = ("a DNS name: labels of letters, digits and '-' separated by '.', each label 1-63 characters "
                 "not starting or ending with '-'")
# hive-builder takes any name; one outside these characters cannot be part of a host name at all (a space, a quote,
# a slash would break /etc/hosts, hostnames and certificates on the hosts), so it stays an error
NAME_CHARS = r"[A-Za-z0-9._-]+"
NAME_CHARS_TEXT = "letters, digits, '.', '_' and '-' (it is the domain of every host name); best a DNS name"
CUSTOM_HOSTNAME = r"[a-z0-9][a-z0-9-]*[a-z0-9]"
CUSTOM_HOSTNAME_TEXT = ("at least 2 lower-case letters, digits and '-', starting and ending with a letter or digit "
                        "(e.g. web-hive)")
USER_NAME_TEXT = "a Linux user name: up to 32 lower-case letters, digits, '_' and '-', starting with a letter or '_'"
URL = r"(https?|file)://\S+"
URL_TEXT = "an http://, https:// or file:// URL without spaces"
DEFAULT_HOSTNAME = "hive"
MAX_HOSTNAME_PLUS_NAME = 54  # hive-builder: len(custom_hostname) + len(name) < 55


@dataclass(frozen=True)
class KeySpec:
    """One key of a mapping: its kind, whether required, and the providers that accept it."""

    name: str
    kind: Kind
    doc: str
    required: bool = False
    providers: tuple[str, ...] | None = None  # None: every provider


def _subnet_keys() -> tuple[KeySpec, ...]:
    return (
        KeySpec("cidr", Network(), "subnet CIDR, inside the stage cidr", required=True),
        KeySpec("name", Str(), "subnet name (default <prefix>subnet<idx>)"),
        KeySpec("available_zone", AnyOf((Str(), Int(1, 3))), "availability zone of hosts in this subnet"),
    )


def _shared_repository_keys() -> tuple[KeySpec, ...]:
    return (
        KeySpec("context_dir", Str(), "context dir of the shared repository on the mother", required=True),
        KeySpec("ssh_port", Int(1, 65535), "sshd port of the repository container (default 2222)"),
        KeySpec("dns_address", Str(), "DNS address of the shared repository"),
    )


def _kickstart_network_keys() -> tuple[KeySpec, ...]:
    return (
        KeySpec("interface", Str(), "interface name", required=True),
        KeySpec("gateway", Ip(), "gateway address"),
        KeySpec("nameservers", ListOf(Ip()), "name servers"),
        KeySpec("ips", ListOf(Ip(), unique=True), "one IP per host, in hive0.. order"),
        KeySpec("netmask", Str(), "netmask"),
        KeySpec("vlanid", Int(1, 4095), "VLAN id"),
        KeySpec("bonding_interfaces", ListOf(Str()), "bonded NICs"),
    )


def _kickstart_keys() -> tuple[KeySpec, ...]:
    return (
        KeySpec("iso_src", Str(), "source ISO file or device", required=True),
        KeySpec("iso_dest", Str(), "output ISO file or device", required=True),
        KeySpec("target", Str(), "install disk (default sda)"),
        KeySpec("media_usb", _TRUTH, "the device is a USB stick rather than a CD-ROM"),
        KeySpec("networks", ListOf(Obj(_kickstart_network_keys)), "network definitions"),
    )


# hive-builder refuses memory_size for aws, azure, gcp and openstack (every provider but vagrant/prepared/kickstart)
_MEMORY_PROVIDERS = ("vagrant", "prepared", "kickstart", *LAB_PROVIDERS)
# it checks prepared_resource_group / not_support_az only for non-vagrant providers
_AZURE_KEY_PROVIDERS = ("azure", "vagrant")
_HB_BUT_VAGRANT = tuple(p for p in HIVE_BUILDER_PROVIDERS if p != "vagrant")
_GB = Int(1, 65536, "GB")
_TRUTH = Bool(truthy=True)  # stage keys hive-builder's plugin tests for truth
_MB = Int(128, 16 * 1024 * 1024, "MB")
_CPUS = Int(1, 1024)

STAGE_KEYS: tuple[KeySpec, ...] = (
    KeySpec("provider", ProviderName(), "provider that builds the hosts", required=True),
    KeySpec("cidr", Network(), "network of the hosts", required=True),
    KeySpec("number_of_hosts", Int(1, 1000), "server count (default 4, or 3 without separate_repository)"),
    KeySpec("separate_repository", _TRUTH, "repository on its own (last) host (default true)"),
    KeySpec("subnets", ListOf(Obj(_subnet_keys), min_items=1), "hosts are spread round-robin over them"),
    KeySpec("ip_address_list", ListOf(Ip(), min_items=1), "explicit host IPs; sets the count"),
    KeySpec("disk_size", _GB, "boot disk of hives"),
    KeySpec("repository_disk_size", _GB, "boot disk of the repository"),
    KeySpec("mirrored_disk_size", _GB, "DRBD backing disk of each hive"),
    KeySpec("root_password", Str(), "first root login password (prepared provider)"),
    KeySpec("internal_cidr", Network(), "address block for docker networks"),
    KeySpec("internal_cidr_v6", Network(6), "IPv6 block for docker_gwbridge"),
    KeySpec("custom_hostname", Str(CUSTOM_HOSTNAME, expected=CUSTOM_HOSTNAME_TEXT),
            "host name stem (default hive)"),
    KeySpec("shared_repository", Obj(_shared_repository_keys), "repository shared by several hives"),
    KeySpec("image_name", AnyOf((Str(), Mapping())), "VM image (AMI id, GCP image, Azure image mapping)"),
    KeySpec("kernel_version", Str(), "kernel pinned by the base role"),
    KeySpec("drbd_download_url", Str(URL, expected=URL_TEXT), "URL of the DRBD rpm tarball"),
    KeySpec("kms_key_id", Str(), "KMS key ARN for EBS encryption"),
    KeySpec("nameservers", AnyOf((ListOf(Str()), Str())), "documented by hive-builder, unused"),
    KeySpec("memory_size", _MB, "memory of hives", providers=_MEMORY_PROVIDERS),
    KeySpec("repository_memory_size", _MB, "memory of the repository", providers=("vagrant",)),
    KeySpec("cpus", _CPUS, "vCPUs of hives"),
    KeySpec("repository_cpus", _CPUS, "vCPUs of the repository", providers=HIVE_BUILDER_PROVIDERS),
    KeySpec("bridge", Str(), "host bridge for a public network", providers=("vagrant",)),
    KeySpec("dev", Str(), "libvirt bridge device", providers=("vagrant",)),
    KeySpec("instance_type", Str(), "instance type of hives", providers=_HB_BUT_VAGRANT),
    KeySpec("repository_instance_type", Str(), "instance type of the repository",
            providers=HIVE_BUILDER_PROVIDERS),
    KeySpec("region", Str(), "cloud region", providers=_HB_BUT_VAGRANT),
    KeySpec("az_suffix_list", ListOf(Str(), min_items=1), "AZ suffixes (default -a, -b, -c)",
            providers=HIVE_BUILDER_PROVIDERS),
    KeySpec("disk_encrypted", _TRUTH, "encrypt hive boot disks", providers=HIVE_BUILDER_PROVIDERS),
    KeySpec("repository_disk_encrypted", _TRUTH, "encrypt the repository boot disk",
            providers=HIVE_BUILDER_PROVIDERS),
    KeySpec("mirrored_disk_encrypted", _TRUTH, "encrypt DRBD disks", providers=HIVE_BUILDER_PROVIDERS),
    KeySpec("filestore_cidr", Network(), "GCP Filestore reserved range", providers=HIVE_BUILDER_PROVIDERS),
    KeySpec("prepared_resource_group", _TRUTH, "Azure resource group exists already",
            providers=_AZURE_KEY_PROVIDERS),
    KeySpec("not_support_az", _TRUTH, "Azure region without zones", providers=_AZURE_KEY_PROVIDERS),
    KeySpec("kickstart_config", Obj(_kickstart_keys), "kickstart ISO and networks", providers=("kickstart",)),
    KeySpec("image", Str(), "base image of the lab containers", providers=("docker",)),
)

TOP_KEYS: tuple[KeySpec, ...] = (
    KeySpec("plugin", Choice(("hive_inventory",)), "selects the hive inventory format", required=True),
    KeySpec("name", Str(NAME_CHARS, max_length=253, expected=NAME_CHARS_TEXT),
            "hive name, the domain of every host name", required=True),
    KeySpec("stages", Mapping(), "private / staging / production stage definitions", required=True),
)

STAGE_SPECS: dict[str, KeySpec] = {k.name: k for k in STAGE_KEYS}


def suggest(key: Any, known: list[str]) -> str:
    """A did-you-mean hint for a misspelt key, or an empty string."""
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(value: dict[Any, Any], specs: tuple[KeySpec, ...]) -> list[Problem]:
    """Check a mapping against key specs: required keys, unknown keys and each value's kind."""
    known = [s.name for s in specs]
    out: list[Problem] = []
    for spec in specs:
        if spec.required and spec.name not in value:
            out.append(((), f"missing required key {spec.name!r}", MISSING, spec.kind.expected))
    by_name = {s.name: s for s in specs}
    for key, item in value.items():
        found = by_name.get(key)
        if found is None:  # hive-builder (and Ansible) ignore unknown keys: so do we, saying so
            out.append(((key,), Surprise("unknown key" + suggest(key, known) + ", ignored as hive-builder does"),
                        MISSING, "one of " + ", ".join(known)))
            continue
        out.extend(((key, *p), m, v, a) for p, m, v, a in found.kind.check(item))
    return out


def object_schema(specs: tuple[KeySpec, ...]) -> dict[str, Any]:
    """JSON Schema of a mapping with known keys (no additional properties)."""
    props: dict[str, Any] = {}
    for spec in specs:
        props[spec.name] = {**spec.kind.schema(), "description": spec.doc}
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    required = [s.name for s in specs if s.required]
    if required:
        out["required"] = required
    return out


# useradd/groupadd's portable rule (shadow-utils is_valid_name, Debian's and EL's defaults agree on it)
_USER_NAME = Str(r"[a-z_][a-z0-9_-]*\$?", max_length=32, expected=USER_NAME_TEXT)
_GROUP_NAME = Str(r"[a-z_][a-z0-9_-]*\$?", max_length=32, expected=USER_NAME_TEXT.replace("user", "group"))
_ID = Int(1, 2**32 - 2)


def _user_keys() -> tuple[KeySpec, ...]:
    """What the users step reads of a hive_users entry (hive-builder's uid, group, id_rsa_pub, and ours)."""
    return (
        KeySpec("uid", _ID, "user id (default: useradd picks one)"),
        KeySpec("group", _GROUP_NAME, "primary group (default: a group named like the user)"),
        KeySpec("groups", ListOf(_GROUP_NAME), "supplementary groups, added to what the user has"),
        KeySpec("id_rsa_pub", SshPublicKey(), "public key added to authorized_keys (hive-builder's key)"),
        KeySpec("authorized_keys", ListOf(SshPublicKey()), "public keys added to authorized_keys"),
        KeySpec("exclusive", Bool(), "authorized_keys holds only these keys (never the login's own key)"),
    )


def _user_group_keys() -> tuple[KeySpec, ...]:
    return (KeySpec("gid", _ID, "group id (default: groupadd picks one)"),)


_IFACE = Str(r"[A-Za-z0-9_.:@+-]+", max_length=15, expected="an interface name like eth0")
_PLAIN = Str(r"[A-Za-z0-9_.:/@+-]+", expected="a plain name of letters, digits and _ . : / @ + -")
_COMMAND = Str(r"/[^\"\n\r{}#!]*", expected="an absolute command line without quotes, braces, '#' or '!'")
_VIP = Str(r"(\d{1,3}\.){3}\d{1,3}(/\d{1,2})?", expected="an IPv4 address with its prefix length, like 10.0.0.100/24")


def _vrrp_script_keys() -> tuple[KeySpec, ...]:
    """A keepalived vrrp_script (tasks/cluster/keepalived_conf.py)."""
    return (
        KeySpec("script", _COMMAND, "the check command (exit 0 = healthy)", required=True),
        KeySpec("interval", Int(1, 3600), "seconds between checks (default 2)"),
        KeySpec("fall", Int(1, 255), "failures before FAULT/weight (default 2)"),
        KeySpec("rise", Int(1, 255), "successes before healthy again (default 2)"),
        KeySpec("weight", Int(-253, 253), "priority change while failing (default: FAULT)"),
        KeySpec("timeout", Int(1, 3600), "seconds before the check counts as failed"),
    )


def _vrrp_instance_keys() -> tuple[KeySpec, ...]:
    """A keepalived vrrp_instance: always state BACKUP + nopreempt, unicast to the other members."""
    return (
        KeySpec("interface", _IFACE, "the interface VRRP runs on and the VIPs go to", required=True),
        KeySpec("virtual_router_id", Int(1, 255), "VRRP router id, unique per network", required=True),
        KeySpec("virtual_ipaddress", ListOf(_VIP, min_items=1, unique=True), "the VIPs", required=True),
        KeySpec("hosts", ListOf(Str(), min_items=2, unique=True),
                "members in priority order (default: every host whose hive_keepalived has this instance)"),
        KeySpec("priority", Int(1, 254), "the first member's priority; each next one 10 less (default 150)"),
        KeySpec("advert_int", Int(1, 255), "seconds between adverts (default 1)"),
        KeySpec("auth_pass", Str(r"[!#-~]{1,8}", expected="1 to 8 printable characters, no space or quote"),
                "VRRPv2 PASS authentication"),
        KeySpec("track_interface", ListOf(_IFACE), "other interfaces whose failure is a FAULT"),
        KeySpec("track_script", ListOf(_PLAIN), "names under scripts"),
        *(KeySpec(k, _COMMAND, f"{k} script (run as script_user)") for k in
          ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")),
        KeySpec("options", Mapping(), "more vrrp_instance keywords: `keyword: value`, one line each"),
    )


def _keepalived_keys() -> tuple[KeySpec, ...]:
    """hive_keepalived: the cluster phase's keepalived step."""
    return (
        KeySpec("instances", NamedMap(Str(r"[A-Za-z0-9_.-]{1,32}", expected="an instance name like VI_1"),
                                      Obj(_vrrp_instance_keys)), "VRRP instances by name", required=True),
        KeySpec("scripts", NamedMap(_PLAIN, Obj(_vrrp_script_keys)), "vrrp_script blocks by name"),
        KeySpec("script_user", _USER_NAME, "the user track and notify scripts run as (default root)"),
    )


# Variables the inventory itself reads from group_vars/host_vars; their kinds are checked too.
VAR_KINDS: dict[str, Kind] = {
    "hive_admin": _USER_NAME,
    "hive_sshd_port": Int(1, 65535),
    "hive_private_ip": Ip(),
    "hive_timezone": TimeZone(),
    "hive_users": NamedMap(_USER_NAME, Obj(_user_keys, expected="a mapping of uid, group, groups, id_rsa_pub, "
                                                              "authorized_keys, exclusive")),
    "hive_user_groups": NamedMap(_GROUP_NAME, Obj(_user_group_keys, expected="a mapping with gid")),
    "ansible_host": Str(),
    "ansible_port": Int(1, 65535),
    "hive_ssh_host": Str(),
    # setup-hosts settings: a wrong kind is a site error before any host is touched.
    "hive_selinux": Choice(("enforcing", "permissive", "disabled")),
    "hive_swarm_mode": Choice(("manager", "worker")),
    "hive_locale": Str(),
    "hive_yum_url": Str(),
    "hive_kernel_version": Str(),
    "hive_http_proxy": Str(),
    "hive_http_proxy_port": Int(1, 65535),
    "hive_pip_index_url": Str(),
    "hive_pip_trusted_host": Str(),
    "hive_ntp_servers": ListOf(Str(), min_items=1),
    "hive_ssh_source_ips": ListOf(Str(), min_items=1),
    "hive_ssh_wait_timeout": Int(0, 1800),
    "hive_zabbix": Bool(),
    "hive_tls_logging": Bool(),
    "hive_keepalived": Obj(_keepalived_keys),
}
