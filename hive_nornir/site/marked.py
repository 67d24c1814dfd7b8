"""YAML loading that remembers the line of every key and list item, for file:line errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .errors import SiteIssue


class MarkedDict(dict[Any, Any]):
    """A mapping that knows its own line and the line of each key."""

    line: int = 0
    lines: dict[Any, int]


class MarkedList(list[Any]):
    """A sequence that knows its own line and the line of each item."""

    line: int = 0
    lines: list[int]


class MarkedLoader(yaml.SafeLoader):
    """SafeLoader that builds MarkedDict/MarkedList and collects duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, Any]] = []


def _construct_map(loader: MarkedLoader, node: yaml.MappingNode) -> Iterator[MarkedDict]:
    data = MarkedDict()
    data.line = node.start_mark.line + 1
    data.lines = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError as exc:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
            ) from exc
        line = key_node.start_mark.line + 1
        if key in data.lines:
            loader.duplicates.append((line, key))
        data[key] = loader.construct_object(value_node, deep=True)
        data.lines[key] = line


def _construct_seq(loader: MarkedLoader, node: yaml.SequenceNode) -> Iterator[MarkedList]:
    data = MarkedList()
    data.line = node.start_mark.line + 1
    data.lines = []
    yield data
    for item in node.value:
        data.append(loader.construct_object(item, deep=True))
        data.lines.append(item.start_mark.line + 1)


MarkedLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
MarkedLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_marked(path: Path) -> tuple[Any, list[SiteIssue]]:
    """Load one YAML file; a missing file or a syntax error becomes a file:line issue, not a traceback."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [SiteIssue(path, None, "", "file not found", allowed="a YAML file")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [SiteIssue(path, None, "", f"cannot be read: {exc}")]
    loader = MarkedLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        return None, [SiteIssue(path, line, "", f"YAML syntax error: {problem}", allowed="valid YAML")]
    except yaml.YAMLError as exc:
        return None, [SiteIssue(path, None, "", f"YAML error: {exc}", allowed="valid YAML")]
    finally:
        loader.dispose()
    issues = [
        SiteIssue(path, line, str(key), "duplicate key", allowed="each key once per mapping")
        for line, key in loader.duplicates
    ]
    return data, issues


def line_of(container: Any, key: Any) -> int | None:
    """Line of a key or item inside a marked container, or of the container itself."""
    if isinstance(container, MarkedDict):
        return container.lines.get(key, container.line)
    if isinstance(container, MarkedList):
        if isinstance(key, int) and 0 <= key < len(container.lines):
            return container.lines[key]
        return container.line
    return None


def plain(value: Any) -> Any:
    """Strip the line bookkeeping so models hold ordinary dicts and lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
