"""hive-builder's persistent hive variables: `.hive/persistents.yml`, read and written in its own format.

`published_port_map` (auto published ports) and `drbd_device_map` (DRBD minors) are stage-scoped there:
`{name: {stage: {key: value}}}`; other variables in the file are kept as they are.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

FILE_NAME = "persistents.yml"


def persistents_path(root: Path) -> Path:
    """Where hive-builder keeps them: `<project root>/.hive/persistents.yml` (beside the stage directories)."""
    return Path(root) / ".hive" / FILE_NAME


def read_persistents(root: Path) -> dict[str, Any]:
    """The whole file (empty when there is none); a broken file is a ValueError naming it."""
    path = persistents_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a mapping of hive variables")
    return data


def stage_map(data: dict[str, Any], name: str, stage: str) -> dict[str, int]:
    """One stage-scoped map (e.g. published_port_map of private), as a fresh dict."""
    scoped = data.get(name) or {}
    found = scoped.get(stage) if isinstance(scoped, dict) else None
    return {str(k): int(v) for k, v in found.items()} if isinstance(found, dict) else {}


def write_stage_maps(root: Path, stage: str, maps: dict[str, dict[str, int]]) -> bool:
    """Store the maps of one stage when they changed (atomic rename); True when the file was written."""
    data = read_persistents(root)
    if all(stage_map(data, name, stage) == value for name, value in maps.items()):
        return False
    for name, value in maps.items():
        scoped = data.get(name)
        if not isinstance(scoped, dict):
            scoped = data[name] = {}
        scoped[stage] = dict(value)
    path = persistents_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".persistents.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump(data, handle, default_flow_style=False)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
