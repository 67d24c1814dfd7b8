"""Validation of parsed site documents: per-key kinds plus hive-builder's cross-key rules."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import MISSING, SiteIssue, Surprise
from .kinds import Problem
from .marked import line_of
from .rules import (
    DEFAULT_HOSTNAME,
    DNS_NAME,
    DNS_NAME_TEXT,
    MAX_HOSTNAME_PLUS_NAME,
    STAGE_KEYS,
    STAGE_NAMES,
    STAGE_PREFIX,
    STAGE_SPECS,
    TOP_KEYS,
    VAR_KINDS,
    check_keys,
    suggest,
)

Path_ = tuple[Any, ...]
Usable = Callable[[Path_], bool]
MISSING_KEY = "missing required key"
JINJA_MARKERS = ("{{", "{%", "{#")
JINJA_ALLOWED = "a literal value (hive_nornir does not template site files)"


def key_path(path: Path_) -> str:
    """Render a key path the way users read it: stages.production.subnets[1].cidr."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def locate(doc: Any, path: Path_) -> int | None:
    """Line of the deepest marked node along a key path."""
    node, line = doc, line_of(doc, None)
    for part in path:
        found = line_of(node, part)
        line = found if found is not None else line
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return line


def to_issues(problems: list[Problem], file: Path, doc: Any, base: Path_ = ()) -> list[SiteIssue]:
    """Turn relative problems into issues with file, line and full key path."""
    out = []
    for rel, problem, value, allowed in problems:
        path = (*base, *rel)
        out.append(SiteIssue(file, locate(doc, path), key_path(path), str(problem), value, allowed,
                             warning=isinstance(problem, Surprise)))
    return out


def jinja_paths(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every key path whose key or string value holds an Ansible Jinja expression."""
    if isinstance(value, str):
        if any(m in value for m in JINJA_MARKERS):
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and any(m in key for m in JINJA_MARKERS):
                yield (*path, key), key
            yield from jinja_paths(item, (*path, key))
    elif isinstance(value, list):
        for idx, item in enumerate(value):
            yield from jinja_paths(item, (*path, idx))


def _jinja_problems(doc: Any) -> list[Problem]:
    problem = "uses Jinja; Jinja expressions are not supported"
    return [(p, problem, v, JINJA_ALLOWED) for p, v in jinja_paths(doc)]


def _drop_shadowed(problems: list[Problem], jinja: list[Problem]) -> list[Problem]:
    """A Jinja value is reported once, as Jinja, not again as a wrong type."""
    shadow = {p for p, *_ in jinja}
    return [pr for pr in problems if not any(pr[0][: len(s)] == s for s in shadow)]


def validate_hive_document(doc: Any, file: Path) -> list[SiteIssue]:
    """All issues of a parsed hive.yml."""
    if not isinstance(doc, dict):
        return [SiteIssue(file, line_of(doc, None) or 1, "", "the site file must be a mapping", MISSING,
                          "keys plugin, name and stages")]
    jinja = _jinja_problems(doc)
    problems = check_keys(doc, TOP_KEYS)
    stages = doc.get("stages")
    name = doc.get("name") if isinstance(doc.get("name"), str) else None
    if name is not None and not any(p == ("name",) for p, *_ in problems) and not re.fullmatch(DNS_NAME, name):
        problems.append((("name",), Surprise("is not a DNS name; hive-builder uses it as given in host names"),
                         name, DNS_NAME_TEXT))
    if isinstance(stages, dict):
        defaulted = [s for s in stages.values() if isinstance(s, dict) and "custom_hostname" not in s]
        if name is not None and defaulted and len(name) + len(DEFAULT_HOSTNAME) > MAX_HOSTNAME_PLUS_NAME:
            problems.append((("name",), f"is too long ({len(name)} characters) for host names", name,
                             f"at most {MAX_HOSTNAME_PLUS_NAME - len(DEFAULT_HOSTNAME)} characters"))
        if not stages:
            problems.append((("stages",), "is empty", MISSING, "at least one of " + ", ".join(STAGE_NAMES)))
        for stage_name, stage in stages.items():
            path = ("stages", stage_name)
            if stage_name not in STAGE_NAMES:
                hint = suggest(stage_name, list(STAGE_NAMES))
                allowed = "one of " + ", ".join(STAGE_NAMES)
                problems.append((path, "is not a stage name" + hint, MISSING, allowed))
                continue
            if not isinstance(stage, dict):
                problems.append((path, "is not a mapping", stage, "a stage object with provider and cidr"))
                continue
            found = stage_problems(stage, name)
            problems.extend((("stages", stage_name, *p), m, v, a) for p, m, v, a in found)
    return to_issues(jinja + _drop_shadowed(problems, jinja), file, doc)


def separate(stage: dict[str, Any]) -> bool:
    """hive-builder's test: `separate_repository` for truth (a quoted 'False' means true), default true."""
    return bool(stage.get("separate_repository", True))


def effective_count(stage: dict[str, Any]) -> int:
    """Number of servers, by hive-builder's rule (the IP list wins over number_of_hosts)."""
    ips = stage.get("ip_address_list")
    if isinstance(ips, list) and ips:
        return len(ips)
    count = stage.get("number_of_hosts")
    if isinstance(count, int) and not isinstance(count, bool):
        return count
    return 4 if separate(stage) else 3


def stage_problems(stage: dict[str, Any], name: str | None) -> list[Problem]:
    """Kind checks plus the cross-key rules of one stage, with paths relative to the stage."""
    problems = check_keys(stage, STAGE_KEYS)
    bad = {p for p, m, *_ in problems if not isinstance(m, Surprise) and not m.startswith(MISSING_KEY)}

    def usable(path: Path_) -> bool:
        return not any(path[: len(b)] == b for b in bad)

    ok = {k: v for k, v in stage.items() if k in STAGE_SPECS and usable((k,))}
    provider = ok.get("provider")
    if isinstance(provider, str):
        for key in stage:
            allowed = STAGE_SPECS[key].providers if key in STAGE_SPECS else None
            if allowed is not None and provider not in allowed:
                problems.append(((key,), f"is not allowed with provider {provider!r}", stage[key],
                                 "this key only with provider " + ", ".join(allowed)))
    problems.extend(_host_rules(ok, name, usable))
    problems.extend(_encryption_rules(ok))
    problems.extend(_address_rules(ok, usable))
    return problems


def _host_rules(ok: dict[str, Any], name: str | None, usable: Usable) -> list[Problem]:
    out: list[Problem] = []
    custom = ok.get("custom_hostname")
    if name is not None and custom is not None and len(custom) + len(name) > MAX_HOSTNAME_PLUS_NAME:
        out.append((("custom_hostname",), f"is too long together with the hive name {name!r} "
                    f"({len(custom)} + {len(name)} characters)", custom,
                    f"len(custom_hostname) + len(name) <= {MAX_HOSTNAME_PLUS_NAME}"))
    if ok.get("shared_repository") and not separate(ok):
        out.append((("shared_repository",), "requires a separate repository", MISSING,
                    "separate_repository: true (or absent) when shared_repository is set"))
    count = effective_count(ok)
    if separate(ok) and count == 1:
        out.append((("number_of_hosts",), Surprise("makes the only host the repository: there is no hive, and "
                    "first_hive and hive_swarm_master name the repository (as in hive-builder)"), count,
                    "at least 2 hosts, or separate_repository: false"))
    ips = ok.get("ip_address_list")
    if ips is not None and "number_of_hosts" in ok and ok["number_of_hosts"] != len(ips):
        out.append((("number_of_hosts",), Surprise(f"is ignored: hive-builder makes one host per address of "
                    f"ip_address_list ({len(ips)}), which changes which host is the repository"),
                    ok["number_of_hosts"], f"{len(ips)}, or leave number_of_hosts out"))
    networks = (ok.get("kickstart_config") or {}).get("networks") or []
    for idx, net in enumerate(networks):
        path = ("kickstart_config", "networks", idx, "ips")
        if usable(path) and isinstance(net, dict) and "ips" in net and len(net["ips"]) < count:
            out.append((path, Surprise(f"has fewer addresses than the {count} hosts"), net["ips"],
                        "one address per host"))
    return out


def _encryption_rules(ok: dict[str, Any]) -> list[Problem]:
    """hive-builder refuses an encryption key (present, whatever its value) without kms_key_id on the host it
    would apply to: disk_encrypted on a hive that is not the last host, mirrored_disk_encrypted on a last host
    that is also a hive (separate_repository false), repository_disk_encrypted on the last host."""
    if "kms_key_id" in ok:
        return []
    count = effective_count(ok)
    refused = {
        "disk_encrypted": count >= 2,
        "mirrored_disk_encrypted": count >= 1 and not separate(ok),
        "repository_disk_encrypted": count >= 1,
    }
    return [((key,), "requires kms_key_id (hive-builder refuses it without one)", ok[key],
             "kms_key_id set in the same stage") for key, applies in refused.items() if applies and key in ok]


def _address_rules(ok: dict[str, Any], usable: Usable) -> list[Problem]:
    out: list[Problem] = []
    if "cidr" not in ok:
        return out
    cidr = ipaddress.ip_network(ok["cidr"])
    count = effective_count(ok)
    subnets = ok.get("subnets")
    ips = ok.get("ip_address_list")
    if subnets is not None and ips is not None:
        out.append((("ip_address_list",), Surprise("only sets the number of hosts: with subnets, hive-builder "
                    "takes the addresses from the subnets"), MISSING, "either subnets or ip_address_list"))
    if "internal_cidr" in ok and ipaddress.ip_network(ok["internal_cidr"]).overlaps(cidr):
        out.append((("internal_cidr",), Surprise(f"overlaps the host network {cidr}: docker networks would get "
                    "routes that shadow it"), ok["internal_cidr"], "a block disjoint from cidr"))
    if ips is not None:
        for idx, ip in enumerate(ips):
            if usable(("ip_address_list", idx)) and ips.index(ip) < idx:
                out.append((("ip_address_list", idx), Surprise(f"is listed twice: two hosts get the same "
                            f"address (ip_address_list[{ips.index(ip)}])"), ip, "each address once"))
    if subnets is not None:
        out.extend(_subnet_rules(subnets, cidr, count, usable))
    elif ips is not None:
        for idx, ip in enumerate(ips):
            if usable(("ip_address_list", idx)) and ipaddress.ip_address(ip) not in cidr:
                out.append((("ip_address_list", idx), Surprise(f"is outside cidr {cidr}; hive-builder uses it "
                            f"with the netmask of {cidr}"), ip, f"an address in {cidr}"))
    else:
        room = max(cidr.num_addresses - 2, 0) - 3
        if room < count:
            out.append((("cidr",), f"has room for {max(room, 0)} hosts (the first 3 are reserved), "
                        f"but the stage has {count}", ok["cidr"], "a larger network"))
    return out


def _subnet_rules(
    subnets: list[dict[str, Any]], cidr: ipaddress._BaseNetwork, count: int, usable: Usable
) -> list[Problem]:
    out: list[Problem] = []
    items = [s if isinstance(s, dict) else {} for s in subnets]  # non-mappings are reported already
    nets = [
        ipaddress.ip_network(s["cidr"]) if "cidr" in s and usable(("subnets", i, "cidr")) else None
        for i, s in enumerate(items)
    ]
    names: dict[str, int] = {}
    for idx, (sub, net) in enumerate(zip(items, nets, strict=True)):
        if not usable(("subnets", idx)):
            continue
        name = sub.get("name", f"subnet{idx}")
        if name in names and usable(("subnets", idx, "name")):
            out.append((("subnets", idx, "name"), Surprise(f"is already used by subnets[{names[name]}]"), name,
                        "a unique subnet name"))
        names.setdefault(name, idx)
        if net is None:
            continue
        if net.version != cidr.version or not net.subnet_of(cidr):  # type: ignore[arg-type]
            out.append((("subnets", idx, "cidr"), Surprise(f"is outside cidr {cidr}"), sub["cidr"],
                        f"a subnet of {cidr}"))
        for other, prev in enumerate(nets[:idx]):
            if prev is not None and prev.overlaps(net):
                out.append((("subnets", idx, "cidr"), Surprise(f"overlaps subnets[{other}] {prev}: hosts may get "
                            "the same address"), sub["cidr"], "disjoint subnets"))
        assigned = len(range(idx, count, len(subnets)))
        room = max(net.num_addresses - 2, 0) - 4
        if net.num_addresses < 8:
            out.append((("subnets", idx, "cidr"), "has fewer than 4 host addresses (hive-builder skips the first "
                        "4 of every subnet)", sub["cidr"], "a /29 or larger"))
        elif room < assigned:
            out.append((("subnets", idx, "cidr"), f"has room for {max(room, 0)} hosts (the first 4 are "
                        f"reserved), but {assigned} are assigned to it", sub["cidr"], "a larger subnet"))
    return out


def validate_vars_document(doc: Any, file: Path) -> list[SiteIssue]:
    """Issues of a group_vars/host_vars file: a mapping, no Jinja, known hive vars of the right kind."""
    if doc is None:
        return []
    if not isinstance(doc, dict):
        return [SiteIssue(file, line_of(doc, None) or 1, "", "a vars file must be a mapping", MISSING,
                          "variable: value pairs")]
    jinja = _jinja_problems(doc)
    problems: list[Problem] = []
    for key, value in doc.items():
        if not isinstance(key, str) or not key.isidentifier():
            problems.append(((key,), "is not a valid variable name", MISSING, "a Python/Ansible identifier"))
        elif key in VAR_KINDS:
            problems.extend(((key, *p), m, v, a) for p, m, v, a in VAR_KINDS[key].check(value))
    return to_issues(jinja + _drop_shadowed(problems, jinja), file, doc)


__all__ = ["STAGE_PREFIX", "effective_count", "separate", "validate_hive_document", "validate_vars_document"]
