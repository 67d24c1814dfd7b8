"""Load a site directory (hive.yml + group_vars + host_vars) into a validated Site."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from .errors import SiteError, SiteIssue
from .marked import load_marked, plain
from .model import Site, make_stage
from .validate import validate_hive_document, validate_vars_document

SITE_FILE = "hive.yml"
_YAML_SUFFIXES = (".yml", ".yaml")


def default_site_dir() -> Path:
    """The embedded default site: package hive_nornir.default_site, else the repo's inventory/ dir."""
    try:
        site_file = importlib.resources.files("hive_nornir.default_site") / SITE_FILE
        if site_file.is_file():
            # a plain package gives a Path, a namespace package a MultiplexedPath whose child is a Path
            return Path(str(site_file)).parent
    except (ModuleNotFoundError, TypeError, ValueError):
        pass
    return Path(__file__).resolve().parents[2] / "inventory"


def find_site(root_dir: Path) -> Path:
    """`<root>/inventory/hive.yml` when the user has one, else the embedded default site."""
    own = Path(root_dir) / "inventory" / SITE_FILE
    return own if own.is_file() else default_site_dir() / SITE_FILE


def _vars_files(directory: Path) -> dict[str, list[Path]]:
    """Ansible layout: <dir>/<name>.yml, or <dir>/<name>/*.yml merged in name order."""
    out: dict[str, list[Path]] = {}
    if not directory.is_dir():
        return out
    for entry in sorted(directory.iterdir()):
        if entry.is_file() and entry.suffix in _YAML_SUFFIXES:
            out.setdefault(entry.stem, []).append(entry)
        elif entry.is_dir():
            out.setdefault(entry.name, []).extend(
                sorted(p for p in entry.iterdir() if p.is_file() and p.suffix in _YAML_SUFFIXES)
            )
    return out


def _load_vars(directory: Path, issues: list[SiteIssue]) -> tuple[dict[str, dict[str, Any]], dict[str, Path]]:
    result: dict[str, dict[str, Any]] = {}
    where: dict[str, Path] = {}
    for name, paths in _vars_files(directory).items():
        merged: dict[str, Any] = {}
        for path in paths:
            doc, found = load_marked(path)
            issues.extend(found)
            checked = validate_vars_document(doc, path)
            issues.extend(checked)
            if isinstance(doc, dict):
                merged.update(plain(doc))
        result[name] = merged
        where[name] = paths[0]
    return result, where


def load_site(path: Path, root_dir: Path | None = None) -> Site:
    """Load and validate a site; raise one SiteError listing every problem found."""
    path = Path(path)
    doc, issues = load_marked(path)
    if doc is not None or not issues:
        issues.extend(validate_hive_document(doc, path))
    group_vars, group_files = _load_vars(path.parent / "group_vars", issues)
    host_vars, host_files = _load_vars(path.parent / "host_vars", issues)
    if issues:
        raise SiteError(sorted(issues, key=lambda i: (i.file != path, str(i.file), i.line or 0)))
    data = plain(doc)
    stages = {name: make_stage(name, raw) for name, raw in data["stages"].items()}
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
    )
