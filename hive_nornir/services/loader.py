"""Find and load a project's service definitions: every `inventory/*.yml` with `plugin: hive_services`.

Files are read with the site's bounded, line-marking YAML loader (the same size, depth and alias limits) and
validated key by key; every problem names file, line and key path, all at once, as site errors do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hive_nornir.site.errors import SiteIssue
from hive_nornir.site.loader import _plugin_of
from hive_nornir.site.marked import load_marked, plain
from hive_nornir.site.rules import STAGE_NAMES

from .model import NetworkDef, ServiceDef, ServiceSet, default_network
from .rules import DEFAULT_NETWORK, PLUGIN
from .validate import cross_file_problems, validate_services_document

_YAML_SUFFIXES = (".yml", ".yaml")


def find_service_files(inventory: Path) -> list[Path]:
    """hive-builder's rule: any inventory file whose plugin is hive_services, in name order (Ansible's order)."""
    if not inventory.is_dir():
        return []
    return sorted(p for p in inventory.iterdir()
                  if p.is_file() and p.suffix in _YAML_SUFFIXES and not p.name.startswith(".")
                  and _plugin_of(p) == PLUGIN)


def load_service_files(files: list[Path]) -> tuple[ServiceSet, list[SiteIssue]]:
    """Load and validate the given files; the set is empty when any file has an error."""
    issues: list[SiteIssue] = []
    docs: list[tuple[Path, Any]] = []
    for path in files:
        doc, found = load_marked(path)
        issues.extend(found)
        if doc is None and any(not i.warning for i in found):
            continue
        checked = validate_services_document(doc, path)
        issues.extend(checked)
        if isinstance(doc, dict):
            docs.append((path, doc))
    issues.extend(cross_file_problems(docs))
    if any(not i.warning for i in issues):
        return ServiceSet(files=tuple(files)), issues
    return build_set(docs), issues


def build_set(docs: list[tuple[Path, Any]]) -> ServiceSet:
    """The model of validated documents (hive-builder's defaults: available_on all stages)."""
    services: list[ServiceDef] = []
    networks: list[NetworkDef] = []
    default_on: set[str] = set()
    defined_default = False
    for path, doc in docs:
        file_on = tuple(doc.get("available_on") or STAGE_NAMES)
        for name, options in (doc.get("services") or {}).items():
            line = doc["services"].lines.get(name, 0) if hasattr(doc["services"], "lines") else 0
            raw = plain(options)
            services.append(ServiceDef(str(name), path, line, raw, tuple(raw.get("available_on") or file_on)))
        for name, options in (doc.get("networks") or {}).items():
            defined_default = defined_default or name == DEFAULT_NETWORK
            networks.append(NetworkDef(str(name), plain(options) or {}, file_on))
        if DEFAULT_NETWORK not in (doc.get("networks") or {}):
            default_on.update(file_on)
    if docs and not defined_default:
        networks.append(default_network(tuple(s for s in STAGE_NAMES if s in default_on)))
    return ServiceSet(tuple(p for p, _ in docs), tuple(services), tuple(networks))


def load_services(inventory: Path) -> tuple[ServiceSet, list[SiteIssue]]:
    """Every services file of an inventory directory."""
    return load_service_files(find_service_files(inventory))
