"""Load a site directory (hive.yml + group_vars + host_vars) into a validated Site."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from .errors import SiteError, SiteIssue
from .marked import load_marked, plain
from .model import Site, Stage, make_stage
from .rules import HIVE_GROUPS, suggest
from .validate import validate_hive_document, validate_vars_document

SITE_FILE = "hive.yml"
_YAML_SUFFIXES = (".yml", ".yaml")
# a top-level `plugin:` line; hive-builder's file is the one whose value is hive_inventory
_PLUGIN_RE = re.compile(r"""^plugin:[ \t]*["']?([^"'#\s]*)["']?[ \t]*(?:#.*)?$""", re.MULTILINE)
_SITE_PLUGIN = "hive_inventory"


def default_site_dir() -> Path:
    """The embedded default site: the package's default_site/ folder (the repository's inventory/ links to it)."""
    return Path(__file__).resolve().parents[1] / "default_site"


def _plugin_of(path: Path) -> str | None:
    """The top-level `plugin:` value of a YAML file, read as text so an unrelated broken file does no harm."""
    try:
        found = _PLUGIN_RE.search(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return found.group(1) if found else None


def _site_error(where: Path, problem: str, allowed: str) -> SiteError:
    return SiteError([SiteIssue(where, None, "", problem, allowed=allowed)])


def find_site(root_dir: Path) -> Path:
    """hive-builder's rule: the one `<root>/inventory/*.yml` with `plugin: hive_inventory`, whatever its name.

    The embedded default site is used only when `<root>/inventory/` does not exist at all, so a misnamed or
    mistyped site file is an error instead of a silent switch to the lab site.
    """
    root = Path(root_dir)
    if not root.is_dir():
        problem = "is not a directory" if root.exists() else "does not exist"
        raise _site_error(root, f"project root {problem}", "an existing directory (the one holding inventory/)")
    inventory = root / "inventory"
    if not inventory.exists():
        return default_site_dir() / SITE_FILE
    if not inventory.is_dir():
        raise _site_error(inventory, "is not a directory", "a directory holding the site file")
    allowed = f"exactly one *.yml or *.yaml file in {inventory} with 'plugin: {_SITE_PLUGIN}'"
    files = sorted(p for p in inventory.iterdir()
                   if p.is_file() and p.suffix in _YAML_SUFFIXES and not p.name.startswith("."))
    plugins = {p: _plugin_of(p) for p in files}
    sites = [p for p, plugin in plugins.items() if plugin == _SITE_PLUGIN]
    if len(sites) == 1:
        return sites[0]
    if sites:
        raise _site_error(inventory, f"{len(sites)} files have 'plugin: {_SITE_PLUGIN}': "
                          + ", ".join(p.name for p in sites), allowed)
    seen = ", ".join(f"{p.name} (plugin: {plugins[p] or 'none'})" for p in files) or "no YAML files"
    raise _site_error(inventory, f"no site file with 'plugin: {_SITE_PLUGIN}' (found: {seen})", allowed)


def _vars_files(directory: Path) -> dict[str, tuple[Path, list[Path]]]:
    """Ansible layout: <dir>/<name>.yml, or <dir>/<name>/*.yml merged in name order; name -> (where, files)."""
    out: dict[str, tuple[Path, list[Path]]] = {}
    if not directory.is_dir():
        return out
    for entry in sorted(directory.iterdir()):
        if entry.is_file() and entry.suffix in _YAML_SUFFIXES:
            out.setdefault(entry.stem, (entry, []))[1].append(entry)
        elif entry.is_dir():
            out.setdefault(entry.name, (entry, []))[1].extend(
                sorted(p for p in entry.iterdir() if p.is_file() and p.suffix in _YAML_SUFFIXES)
            )
    return out


def _load_vars(directory: Path, issues: list[SiteIssue]) -> tuple[dict[str, dict[str, Any]], dict[str, Path]]:
    result: dict[str, dict[str, Any]] = {}
    where: dict[str, Path] = {}
    for name, (origin, paths) in _vars_files(directory).items():
        merged: dict[str, Any] = {}
        for path in paths:
            doc, found = load_marked(path)
            issues.extend(found)
            checked = validate_vars_document(doc, path)
            issues.extend(checked)
            if isinstance(doc, dict):
                merged.update(plain(doc))
        result[name] = merged
        where[name] = origin
    return result, where


def _host_names(site_name: str, stages: dict[str, Stage]) -> tuple[list[str], str]:
    """Every host hive-builder's inventory has in any stage (servers and the mother), and a short listing."""
    names: list[str] = []
    listing: list[str] = []
    for stage in stages.values():
        servers = [stage.host_name(idx, site_name) for idx in range(stage.number_of_hosts)]
        mother = f"{stage.prefix}mother.{site_name}"
        names.extend([*servers, mother])
        listing.append(servers[0] if len(servers) == 1 else f"{servers[0]} .. {servers[-1]}")
        listing.append(mother)
    return names, ", ".join(listing)


def _unmatched(files: dict[str, Path], known: list[str], problem: str, allowed: str) -> list[SiteIssue]:
    """Ansible silently ignores a vars file named after nothing; here it is a warning (most likely a typo)."""
    return [SiteIssue(where, None, "", problem + suggest(name, known), allowed=allowed, warning=True)
            for name, where in files.items() if name not in known]


def _errors(issues: list[SiteIssue]) -> list[SiteIssue]:
    return [i for i in issues if not i.warning]


def _strict(issue: SiteIssue) -> SiteIssue:
    """A warning refused by --strict: the same text, marked so the user knows why it is an error."""
    return dataclasses.replace(issue, warning=False, problem=issue.problem + " (refused by --strict)")


def load_site(path: Path, root_dir: Path | None = None, strict: bool = False) -> Site:
    """Load and validate a site; raise one SiteError listing every problem found.

    What hive-builder accepts but does surprisingly is a warning (Site.warnings, each naming file:line:key);
    `strict` makes those errors too.
    """
    path = Path(path)
    doc, issues = load_marked(path)
    if doc is not None or not _errors(issues):
        issues.extend(validate_hive_document(doc, path))
    site_ok = not _errors(issues)
    group_vars, group_files = _load_vars(path.parent / "group_vars", issues)
    host_vars, host_files = _load_vars(path.parent / "host_vars", issues)
    issues.extend(_unmatched(group_files, list(HIVE_GROUPS), "matches no group, so it never applies",
                             "a group of hive-builder's inventory: " + ", ".join(HIVE_GROUPS)))
    data = plain(doc) if site_ok else {}
    stages = {name: make_stage(name, raw) for name, raw in data.get("stages", {}).items()}
    if site_ok:  # host names need a valid hive.yml
        hosts, listing = _host_names(data["name"], stages)
        issues.extend(_unmatched(host_files, hosts, "matches no host of any stage, so it never applies",
                                 f"a host name of the site: {listing}"))
    from hive_nornir.services.loader import load_services  # late: the services format builds on the site's

    services, service_issues = load_services(path.parent)
    issues.extend(service_issues)
    issues.sort(key=lambda i: (i.file != path, str(i.file), i.line or 0))
    if strict:
        issues = [_strict(i) if i.warning else i for i in issues]
    if _errors(issues):
        raise SiteError(_errors(issues))
    var_files = {f"group_vars/{k}": v for k, v in group_files.items()}
    var_files.update({f"host_vars/{k}": v for k, v in host_files.items()})
    return Site(
        name=data["name"],
        path=path,
        root_dir=Path(root_dir) if root_dir is not None else path.resolve().parent.parent,
        stages=stages,
        group_vars=group_vars,
        host_vars=host_vars,
        var_files=var_files,
        warnings=tuple(issues),
        services=services,
    )
