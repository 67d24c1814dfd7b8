"""Validation of one parsed services file: each key's kind plus hive-builder's plugin rules across keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hive_nornir.site.errors import MISSING, SiteIssue, Surprise
from hive_nornir.site.kinds import Problem
from hive_nornir.site.marked import line_of
from hive_nornir.site.rules import check_keys, suggest
from hive_nornir.site.validate import jinja_paths, to_issues

from .rules import (
    DEFAULT_NETWORK,
    FILE_KEYS,
    SERVICE_NAME,
    Strict,
    name_surprises,
    network_keys,
    service_keys,
    strict_keys,
)

Path_ = tuple[Any, ...]
JINJA = Surprise("holds a Jinja expression, which hive_nornir does not render: deploying this service is refused "
                 "until it is a literal value")
JINJA_ALLOWED = "a literal value"
_ONE_OF = ("drbd", "nfs", "driver")


def validate_services_document(doc: Any, file: Path) -> list[SiteIssue]:
    """All issues of one `plugin: hive_services` file (each with file, line and key path)."""
    if not isinstance(doc, dict):
        return [SiteIssue(file, line_of(doc, None) or 1, "", "a services file must be a mapping", MISSING,
                          "keys plugin and services")]
    problems: list[Problem] = list(check_keys(doc, FILE_KEYS))
    services = doc.get("services")
    if isinstance(services, dict):
        for name, options in services.items():
            problems.extend(_service_problems(name, options))
    elif "services" in doc:
        problems.append((("services",), "is not a mapping", services, "service name -> service definition"))
    networks = doc.get("networks")
    if isinstance(networks, dict):
        for name, options in networks.items():
            problems.extend(_network_problems(name, options))
    elif networks is not None:
        problems.append((("networks",), "is not a mapping", networks, "network name -> network definition"))
    problems.extend((p, JINJA, v, JINJA_ALLOWED) for p, v in jinja_paths(services, ("services",)))
    return to_issues(problems, file, doc)


def _name_problems(path: Path_, name: Any) -> list[Problem]:
    found = [(path, m, name, a) for _, m, _, a in SERVICE_NAME.check(name)]
    if found:
        return found
    return [(path, problem, name, "letters, digits and '-', not starting with 'hive-'")
            for problem in name_surprises(str(name))]


def _service_problems(name: Any, options: Any) -> list[Problem]:
    base: Path_ = ("services", name)
    out = _name_problems(base, name)
    if not isinstance(options, dict):  # hive-builder: "value must be dict type in service NAME"
        return [*out, (base, "is not a mapping", options, "a service definition (image, ports, volumes, ...)")]
    out.extend(_rel(base, strict_keys(options, service_keys(), "service")))
    image = options.get("image")
    if isinstance(image, dict):
        if "pull_from" in image and "pull_on" not in image:  # hive-builder refuses this
            out.append(((*base, "image", "pull_from"), "is given without pull_on", MISSING,
                        "pull_on: the stages that deploy pull_from instead of building"))
        if "pull_on" in image and "pull_from" not in image:  # deploy-services would pull an undefined tag
            out.append(((*base, "image", "pull_on"), "is given without pull_from", MISSING,
                        "pull_from: the tag those stages deploy"))
    volumes = options.get("volumes")
    if isinstance(volumes, list):
        for idx, volume in enumerate(volumes):
            out.extend(_volume_problems((*base, "volumes", idx), volume))
    if "ignore_error" in options and "monitor_error" not in options:
        out.append(((*base, "ignore_error"), Surprise("is only used with monitor_error, which is not given"),
                    MISSING, "monitor_error with it"))
    for idx, script in enumerate(options.get("backup_scripts") or []):
        if isinstance(script, dict) and "directory" in script:
            clash = sorted(k for k in script if k in ("backup_command", "backup_file", "restore_command",
                                                      "restore_file", "ext"))
            if clash:
                out.append(((*base, "backup_scripts", idx), Surprise(
                    f"has directory together with {', '.join(clash)}; hive-builder's docs make them exclusive"),
                    MISSING, "directory, or the backup/restore command keys"))
    return out


def _volume_problems(path: Path_, volume: Any) -> list[Problem]:
    if not isinstance(volume, dict):
        return []  # the kind check already said so
    out: list[Problem] = []
    given = [k for k in _ONE_OF if k in volume]
    if len(given) > 1:  # hive-builder: 'both "driver" and "nfs" can not be specified'
        out.append(((*path, given[1]), f"is given together with {given[0]}", MISSING,
                    "at most one of drbd, nfs and driver"))
    if given and volume.get("type", "bind") != "volume":
        out.append(((*path, "type"), f"must be volume for a {given[0]} volume", volume.get("type", MISSING),
                    "type: volume (the default is bind, a host path)"))
    if "driver_opts" in volume and "driver" not in volume:
        out.append(((*path, "driver_opts"), Surprise("is ignored without driver, as hive-builder ignores it"),
                    MISSING, "driver with it"))
    return out


def _network_problems(name: Any, options: Any) -> list[Problem]:
    base: Path_ = ("networks", name)
    out = [(base, m, name, a) for _, m, _, a in SERVICE_NAME.check(name)]
    if options is None:
        return out
    if not isinstance(options, dict):  # hive-builder: "value must be dict type in network NAME"
        return [*out, (base, "is not a mapping", options, "a network definition (ipam, driver_opts)")]
    out.extend(_rel(base, Strict(network_keys, "network").check(options)))
    if options.get("driver", "overlay") != "overlay":
        out.append(((*base, "driver"), Surprise("is ignored: build-networks makes overlay networks, as "
                                                "hive-builder does"), options["driver"], "overlay"))
    return out


def _rel(base: Path_, problems: list[Problem]) -> list[Problem]:
    return [((*base, *p), m, v, a) for p, m, v, a in problems]


def cross_file_problems(files: list[tuple[Path, Any]]) -> list[SiteIssue]:
    """Rules over every services file: one definition per name, unique DRBD minors, known networks, ports."""
    issues: list[SiteIssue] = []
    seen: dict[str, Path] = {}
    networks = {DEFAULT_NETWORK}
    for _, doc in files:
        networks.update(k for k in (doc.get("networks") or {}) if isinstance(k, str))
    minors: dict[int, str] = {}
    published: dict[int, str] = {}
    for file, doc in files:
        services = doc.get("services")
        problems: list[Problem] = []
        for name, options in (services.items() if isinstance(services, dict) else ()):
            if not isinstance(options, dict):
                continue
            base: Path_ = ("services", name)
            if name in seen:
                problems.append((base, f"is defined again (first in {seen[name]})", MISSING,
                                 "each service once over all services files"))
            seen.setdefault(name, file)
            problems.extend(_minor_problems(base, options, minors))
            problems.extend(_published_problems(base, name, options, published))
            for idx, net in enumerate(options.get("networks") or []):
                net_name = net.get("name") if isinstance(net, dict) else net
                if isinstance(net_name, str) and net_name not in networks:
                    problems.append(((*base, "networks", idx), Surprise(
                        "is not defined in any services file" + suggest(net_name, sorted(networks))
                        + "; it must exist on the swarm already"), net_name, ", ".join(sorted(networks))))
        issues.extend(to_issues(problems, file, doc))
    return issues


def _minor_problems(base: Path_, options: dict[str, Any], minors: dict[int, str]) -> list[Problem]:
    """hive-builder: 'duplicate deviceid N of volume V' when two volumes ask for one DRBD minor."""
    out: list[Problem] = []
    for idx, volume in enumerate(options.get("volumes") or []):
        drbd = volume.get("drbd") if isinstance(volume, dict) else None
        minor = drbd.get("device_id") if isinstance(drbd, dict) else None
        if not isinstance(minor, int) or isinstance(minor, bool):
            continue
        source = str(volume.get("source"))
        if minors.get(minor, source) != source:
            out.append(((*base, "volumes", idx, "drbd", "device_id"),
                        f"is already the DRBD minor of volume {minors[minor]}", minor, "a minor no other volume has"))
        minors.setdefault(minor, source)
    return out


def _published_problems(base: Path_, name: str, options: dict[str, Any],
                        published: dict[int, str]) -> list[Problem]:
    """hive-builder warns 'duplicate port number' when two services publish one port."""
    out: list[Problem] = []
    for idx, port in enumerate(options.get("ports") or []):
        number: Any = port.get("published_port") if isinstance(port, dict) else None
        if isinstance(port, str) and ":" in port:
            number = int(port.split("/")[0].split(":")[0])
        if not isinstance(number, int) or isinstance(number, bool):
            continue
        owner = published.get(number)
        if owner is not None and owner != name:
            out.append(((*base, "ports", idx), Surprise(f"publishes port {number}, which service {owner} publishes "
                                                        "too (hive-builder warns and goes on)"), port,
                        "a published port of one service"))
        published.setdefault(number, name)
    return out
