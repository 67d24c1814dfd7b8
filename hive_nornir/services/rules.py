"""The rule tables of hive-builder's service definition format (`plugin: hive_services`), key by key.

hive-builder's plugin refuses an unknown key in a service, image, volume or network (AnsibleParserError), so here
an unknown key is an error too (with a did-you-mean), unlike the site file where hive-builder ignores them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hive_nornir.site.errors import MISSING, Surprise
from hive_nornir.site.kinds import AnyOf, Bool, Choice, Int, Kind, ListOf, Mapping, NamedMap, Network, Problem, Str
from hive_nornir.site.rules import STAGE_NAMES, KeySpec, object_schema, suggest

PLUGIN = "hive_services"
DEFAULT_NETWORK = "hive_default_network"
AUTO_PORT_FIRST = 61001  # hive-builder: auto published ports are counted from 61001
AUTO_PORT_LAST = 65534  # range(61001, 65535)
DRBD_MINOR_LAST = 255  # range(1, 256)
RESERVED_PREFIX = "hive-"  # docs/inventory.rst: service names starting with hive- are reserved
# docker service names: a letter or digit, then letters, digits, '_', '.', '-' (at most 63)
DOCKER_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"
DOCKER_NAME_TEXT = "a docker service name: a letter or digit, then letters, digits, '_', '.', '-' (at most 63)"
HOST_LIKE = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"  # hive-builder: no symbol but '-' (names are host names)
DURATION = r"([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+"
DURATION_TEXT = "a duration like 30s, 1m30s or 5h34m56s"
SIZE = r"[0-9]+(\.[0-9]+)?[bBkKmMgGtTpPeE]?"
SIZE_TEXT = "a size with a unit like 500M or 20G"
MEMORY = r"[0-9]+(\.[0-9]+)?\s*([kKmMgGtTpP][iI]?)?[bB]?"
MEMORY_TEXT = "bytes, or a size with a unit like 512M or 2G"
PORT_TEXT = "'TARGET', 'PUBLISHED:TARGET' with an optional '/tcp', '/udp' or '/sctp', or a mapping"
PORT_RE = r"([0-9]{1,5}:)?[0-9]{1,5}(/(tcp|udp|sctp))?"
PROTOCOLS = ("tcp", "udp", "sctp")
CAPABILITY = r"[A-Za-z_0-9]+"


@dataclass(frozen=True)
class Strict(Kind):
    """A mapping with known keys where an unknown key is an error, as in hive-builder's services plugin."""

    keys: Callable[[], tuple[KeySpec, ...]] = tuple
    what: str = "mapping"
    expected: str = "a mapping"

    def check(self, value: Any) -> list[Problem]:
        if isinstance(value, str) and self.what == "volume":  # hive-builder: "we do not support short syntax"
            return [((), "is the short syntax, which hive-builder does not support", value, self.expected)]
        if not isinstance(value, dict):
            return [((), "is not a mapping", value, self.expected)]
        return strict_keys(value, self.keys(), self.what)

    def schema(self) -> dict[str, Any]:
        return object_schema(self.keys())


def strict_keys(value: dict[Any, Any], specs: tuple[KeySpec, ...], what: str) -> list[Problem]:
    """Required keys, each value's kind, and unknown keys refused (hive-builder: 'unknown parameter ...')."""
    known = [s.name for s in specs]
    by_name = {s.name: s for s in specs}
    out: list[Problem] = [((), f"missing required key {s.name!r}", MISSING, s.kind.expected)
                          for s in specs if s.required and s.name not in value]
    for key, item in value.items():
        spec = by_name.get(key)
        if spec is None:
            out.append(((key,), f"unknown key in {what}{suggest(key, known)}; hive-builder refuses it too",
                        MISSING, "one of " + ", ".join(known)))
            continue
        out.extend(((key, *p), m, v, a) for p, m, v, a in spec.kind.check(item))
    return out


@dataclass(frozen=True)
class Number(Kind):
    """An int or a float above a minimum (cpu_limit: 1.5)."""

    minimum: float = 0.0
    expected: str = "a number greater than 0"

    def check(self, value: Any) -> list[Problem]:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [((), "is not a number", value, self.expected)]
        return [] if value > self.minimum else [((), "is out of range", value, self.expected)]

    def schema(self) -> dict[str, Any]:
        return {"type": "number", "exclusiveMinimum": self.minimum}


@dataclass(frozen=True)
class Scalar(Kind):
    """A string, number or boolean (environment and sysctl values; docker gets their text)."""

    expected: str = "a string, number or boolean"

    def check(self, value: Any) -> list[Problem]:
        ok = isinstance(value, str | int | float | bool)
        return [] if ok else [((), "is not a string, number or boolean", value, self.expected)]

    def schema(self) -> dict[str, Any]:
        return {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}


@dataclass(frozen=True)
class Anything(Kind):
    """Any YAML value (label values: non-strings are JSON-encoded, as hive-builder does)."""

    expected: str = "any value"

    def check(self, value: Any) -> list[Problem]:
        return []

    def schema(self) -> dict[str, Any]:
        return {}


def MapOf(key: Kind | None = None, value: Kind | None = None) -> NamedMap:
    """A mapping whose keys and values each have one kind (scalars by default); None values are refused."""
    return NamedMap(key or Str(), value or Scalar(), empty=False)


_STAGES = ListOf(Choice(STAGE_NAMES), unique=True)
_STR_OR_LIST = AnyOf((Str(), ListOf(Str())))
_DURATION = Str(DURATION, expected=DURATION_TEXT)
_PORT = Int(1, 65535)


def _image_keys() -> tuple[KeySpec, ...]:
    """hive-builder's IMAGE_PARAMS (a build on the repository: build-images)."""
    return (
        KeySpec("from", Str(), "the base image tag (remapped by tag-mapping.json)", required=True),
        KeySpec("roles", ListOf(Str(), min_items=1), "roles applied inside the build container", required=True),
        KeySpec("standalone", Bool(), "build as a systemd container (the image's own init, privileged)"),
        KeySpec("env", MapOf(), "environment of the build container"),
        KeySpec("stop_signal", AnyOf((Str(), Int(1, 64))), "signal that stops the image's root process"),
        KeySpec("user", Str(), "user of the image's root process"),
        KeySpec("working_dir", Str(), "working directory of the image"),
        KeySpec("entrypoint", _STR_OR_LIST, "ENTRYPOINT of the committed image"),
        KeySpec("command", _STR_OR_LIST, "CMD of the committed image"),
        KeySpec("privileged", Bool(), "run the build container privileged"),
        KeySpec("expose", AnyOf((Str(), Int(1, 65535), ListOf(AnyOf((Str(), Int(1, 65535)))))),
                "EXPOSE of the committed image"),
        KeySpec("pull_on", _STAGES, "stages that pull pull_from instead of building"),
        KeySpec("pull_from", Str(), "the tag deployed on the pull_on stages"),
    )


def _drbd_keys() -> tuple[KeySpec, ...]:
    return (
        KeySpec("fstype", Choice(("xfs", "ext4")), "file system of the DRBD device", required=True),
        KeySpec("size", Str(SIZE, expected=SIZE_TEXT), "thin LV size in drbdpool", required=True),
        KeySpec("diskless", ListOf(Str()), "hosts that get the resource without a disk"),
        KeySpec("available_on", _STAGES, "stages that build this volume (default: the service's)"),
        KeySpec("device_id", Int(1, DRBD_MINOR_LAST), "DRBD minor (default: assigned and persisted)"),
    )


def _nfs_keys() -> tuple[KeySpec, ...]:
    return (
        KeySpec("size", AnyOf((Str(), Int(1))), "share size (azure)"),
        KeySpec("available_on", _STAGES, "stages that build this volume (default: the service's)"),
    )


def _volume_keys() -> tuple[KeySpec, ...]:
    """VOLUME_PARAMS + VOLUME_PARAMS_DEF: the long syntax only."""
    return (
        KeySpec("source", Str(), "volume name, host path, or '' for tmpfs", required=True),
        KeySpec("target", Str(), "mount point in the container", required=True),
        KeySpec("type", Choice(("volume", "bind", "tmpfs")), "mount type (default bind)"),
        KeySpec("readonly", Bool(), "mount read-only"),
        KeySpec("driver", Str(), "volume driver; build-volumes creates the volume"),
        KeySpec("driver_opts", MapOf(), "options of the volume driver"),
        KeySpec("drbd", Strict(_drbd_keys, "drbd"), "a DRBD-replicated volume made by build-volumes"),
        KeySpec("nfs", AnyOf((Strict(_nfs_keys, "nfs"), _NULL)), "an NFS volume made by build-volumes"),
    )


@dataclass(frozen=True)
class Null(Kind):
    """YAML null (an empty `nfs:`)."""

    expected: str = "nothing"

    def check(self, value: Any) -> list[Problem]:
        return [] if value is None else [((), "is not empty", value, self.expected)]

    def schema(self) -> dict[str, Any]:
        return {"type": "null"}


_NULL = Null()


def _port_keys() -> tuple[KeySpec, ...]:
    return (
        KeySpec("target_port", _PORT, "port inside the container", required=True),
        KeySpec("published_port", _PORT, "port on the swarm (default: assigned from 61001 and persisted)"),
        # hive-builder's plugin reads portdef['protocol'] of a mapping unconditionally (a KeyError without it)
        KeySpec("protocol", Choice(PROTOCOLS), "tcp, udp or sctp", required=True),
        KeySpec("mode", Choice(("ingress", "host")), "routing mesh (ingress, default) or the node's own port"),
    )


@dataclass(frozen=True)
class PortDef(Kind):
    """One `ports` item: hive-builder's short string or its long mapping (an int is refused, as it refuses)."""

    expected: str = PORT_TEXT

    def check(self, value: Any) -> list[Problem]:
        import re

        if isinstance(value, dict):
            return Strict(_port_keys, "port").check(value)
        if not isinstance(value, str):
            return [((), "is not a port string or mapping (quote it: '8080')", value, self.expected)]
        if not re.fullmatch(PORT_RE, value):
            return [((), "is not a port definition", value, self.expected)]
        numbers = [int(n) for n in value.split("/")[0].split(":")]
        if any(not 1 <= n <= 65535 for n in numbers):
            return [((), "has a port out of range", value, "ports from 1 to 65535")]
        return []

    def schema(self) -> dict[str, Any]:
        return {"anyOf": [{"type": "string", "pattern": f"^(?:{PORT_RE})$"}, object_schema(_port_keys())]}


def _backup_keys() -> tuple[KeySpec, ...]:
    return (
        KeySpec("name", Str(r"[A-Za-z0-9_-]+", expected="letters, digits, '_' and '-'"),
                "name of the backup (backup-NAME-DATE.EXT)", required=True),
        KeySpec("directory", Str(), "a directory in the container archived as tar.gz"),
        KeySpec("backup_command", Str(), "command writing backup_file in the container"),
        KeySpec("backup_file", Str(), "the file backup_command writes"),
        KeySpec("restore_command", Str(), "command reading restore_file in the container"),
        KeySpec("restore_file", Str(), "the file restore_command reads"),
        KeySpec("ext", Str(), "extension of the backup file on the repository"),
        KeySpec("cleanup_days_before", Int(0, 36500), "keep this many days of backups besides today's"),
        KeySpec("batch_scripts", ListOf(Str()), "nightly commands run before the backup"),
    )


def _logging_keys() -> tuple[KeySpec, ...]:
    return (
        KeySpec("driver", Str(), "log driver (default syslog to the repository)"),
        KeySpec("options", MapOf(), "log driver options"),
    )


def _healthcheck_keys() -> tuple[KeySpec, ...]:
    return (
        KeySpec("test", _STR_OR_LIST, "the check: a command string, or ['CMD', ...] / ['CMD-SHELL', ...] / "
                                      "['NONE']"),
        KeySpec("interval", _DURATION, "time between checks"),
        KeySpec("timeout", _DURATION, "time a check may take"),
        KeySpec("retries", Int(0, 1000), "failures before unhealthy"),
        KeySpec("start_period", _DURATION, "grace period after start"),
    )


def _restart_keys() -> tuple[KeySpec, ...]:
    return (
        KeySpec("condition", Choice(("none", "on-failure", "any")), "when a task is restarted"),
        KeySpec("delay", _DURATION, "time between restarts"),
        KeySpec("max_attempts", Int(0, 1_000_000), "restarts before giving up"),
        KeySpec("window", _DURATION, "window for max_attempts"),
    )


def _placement_keys() -> tuple[KeySpec, ...]:
    return (
        KeySpec("constraints", _STR_OR_LIST, "e.g. node.labels.proxy_config == true"),
        KeySpec("preferences", ListOf(MapOf(Str(), Str())), "e.g. [{spread: node.labels.zone}]"),
        KeySpec("replicas_max_per_node", Int(0, 100000), "tasks per node at most"),
    )


def _service_network_keys() -> tuple[KeySpec, ...]:
    return (
        KeySpec("name", Str(), "the network", required=True),
        KeySpec("aliases", ListOf(Str()), "DNS aliases on that network"),
        KeySpec("options", MapOf(), "driver options of the attachment"),
    )


def service_keys() -> tuple[KeySpec, ...]:
    """hive-builder's SERVICE_PARAMS: each is copied to the host var hive_<key> of the service."""
    return (
        KeySpec("available_on", _STAGES, "stages the service runs on (default: the file's, or all three)"),
        KeySpec("image", AnyOf((Str(), Strict(_image_keys, "image"))),
                "a tag to pull, or a build (from, roles, ...)", required=True),
        KeySpec("command", _STR_OR_LIST, "arguments to the entrypoint (swarm: args)"),
        KeySpec("entrypoint", _STR_OR_LIST, "the entrypoint (swarm: command)"),
        KeySpec("environment", MapOf(), "environment variables"),
        KeySpec("ports", ListOf(PortDef()), "published ports"),
        KeySpec("volumes", ListOf(Strict(_volume_keys, "volume", expected="a volume mapping (long syntax)")),
                "mounts; drbd, nfs or driver volumes are made by build-volumes"),
        KeySpec("mode", Choice(("replicated", "global")), "service mode (default replicated)"),
        KeySpec("replicas", Int(-1, 100000), "tasks of a replicated service"),
        KeySpec("endpoint_mode", Choice(("vip", "dnsrr")), "endpoint mode (default vip)"),
        KeySpec("placement", Strict(_placement_keys, "placement"), "constraints and preferences"),
        KeySpec("labels", MapOf(Str(), Anything()), "service labels (HIVE_VIP, HIVE_MARK, ... for the extender)"),
        KeySpec("logging", Strict(_logging_keys, "logging"), "log driver and options"),
        KeySpec("dns", _STR_OR_LIST, "DNS servers"),
        KeySpec("hosts", MapOf(Str(), Str()), "extra /etc/hosts entries: name -> address"),
        KeySpec("user", Str(), "user of the container's process"),
        KeySpec("working_dir", Str(), "working directory"),
        KeySpec("stop_grace_period", _DURATION, "time between the stop signal and the kill"),
        KeySpec("restart_config", Strict(_restart_keys, "restart_config"), "restart policy"),
        KeySpec("healthcheck", Strict(_healthcheck_keys, "healthcheck"), "health check"),
        KeySpec("cap_add", ListOf(Str(CAPABILITY)), "capabilities added"),
        KeySpec("cap_drop", ListOf(Str(CAPABILITY)), "capabilities dropped"),
        KeySpec("sysctls", MapOf(), "namespaced sysctls"),
        KeySpec("cpu_limit", Number(), "CPUs at most (e.g. 1.5)"),
        KeySpec("mem_limit", AnyOf((Str(MEMORY, expected=MEMORY_TEXT), Int(1))), "memory at most (e.g. 512M)"),
        KeySpec("networks", ListOf(AnyOf((Str(), Strict(_service_network_keys, "network attachment")))),
                "networks (default: every network of the definitions)"),
        KeySpec("standalone", Bool(), "a systemd container (tmpfs /run, /tmp, /sys/fs/cgroup, caps, /sbin/init)"),
        KeySpec("initialize_roles", ListOf(Str()), "roles applied inside a running task by initialize-services"),
        KeySpec("backup_scripts", ListOf(Strict(_backup_keys, "backup script")), "backup, restore, nightly batch"),
        KeySpec("monitor_error", ListOf(Str()), "regexes of log lines that are errors"),
        KeySpec("ignore_error", ListOf(Str()), "regexes of error lines to ignore (with monitor_error)"),
    )


def _ipam_config_keys() -> tuple[KeySpec, ...]:
    return (
        KeySpec("subnet", Network(), "subnet of the network"),
        KeySpec("gateway", Str(), "gateway address"),
        KeySpec("iprange", Network(), "range tasks get addresses from"),
        KeySpec("aux_addresses", MapOf(Str(), Str()), "reserved addresses"),
    )


def _ipam_keys() -> tuple[KeySpec, ...]:
    return (
        KeySpec("driver", Str(), "IPAM driver"),
        KeySpec("config", ListOf(Strict(_ipam_config_keys, "ipam config")), "subnets"),
        KeySpec("options", MapOf(), "IPAM driver options"),
    )


def network_keys() -> tuple[KeySpec, ...]:
    """hive-builder's NETWORK_PARAMS."""
    return (
        KeySpec("driver", Str(), "ignored: build-networks always makes overlay networks, as hive-builder does"),
        KeySpec("ipam", Strict(_ipam_keys, "ipam"), "address management"),
        KeySpec("driver_opts", MapOf(), "overlay driver options (e.g. encrypted: 'true')"),
    )


SERVICE_NAME = Str(DOCKER_NAME, expected=DOCKER_NAME_TEXT)

FILE_KEYS: tuple[KeySpec, ...] = (
    KeySpec("plugin", Choice((PLUGIN,)), "selects the hive services format", required=True),
    KeySpec("services", Mapping(), "service name -> service definition", required=True),
    KeySpec("networks", Mapping(), "network name -> overlay network definition"),
    KeySpec("available_on", _STAGES, "stages of every service of this file (default all three)"),
)


def name_surprises(name: str) -> list[str]:
    """hive-builder's naming advice (docs): what it accepts but says not to do; warnings, errors under --strict."""
    import re

    out: list[str] = []
    if not re.fullmatch(HOST_LIKE, name):
        out.append(Surprise("holds a symbol other than '-'; hive-builder says not to (the name is used as a host "
                            "name)"))
    if name.startswith(RESERVED_PREFIX):
        out.append(Surprise(f"starts with {RESERVED_PREFIX!r}, which hive-builder reserves for its own services"))
    return out
