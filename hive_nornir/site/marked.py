"""YAML loading that remembers the line of every key and list item, for file:line errors.

Bounded on hostile input: a file is at most MAX_BYTES, nests at most MAX_DEPTH levels (counted through aliases)
and expands through aliases and merge keys to at most MAX_NODES values ("billion laughs"); each limit is a
file:line issue found before any Python object is built, so time and memory stay proportional to the file size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .errors import SiteIssue

MAX_BYTES = 1024 * 1024  # a site file is a few KB; group_vars with certificates stay far below this
MAX_DEPTH = 64  # PyYAML composes and constructs recursively: this keeps well inside Python's recursion limit
MAX_NODES = 100_000  # values after alias expansion; a large site has a few thousand


class LimitExceeded(yaml.MarkedYAMLError):
    """A document beyond MAX_BYTES / MAX_DEPTH / MAX_NODES: refused before it is expanded."""


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
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        """PyYAML recurses once per nesting level: refuse a level beyond MAX_DEPTH before descending."""
        if self._depth >= MAX_DEPTH:
            raise LimitExceeded(problem=f"nests deeper than {MAX_DEPTH} levels",
                                problem_mark=self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Any:
        """The composed node graph, refused when its alias expansion is too deep or too large."""
        node = super().get_single_node()
        if node is not None:
            check_expansion(node)
        return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def check_expansion(root: yaml.Node) -> None:
    """Size and depth of the document as aliases expand it, in one pass over the shared nodes (no recursion)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            on_path.discard(key)
            if size[key] > MAX_NODES:
                raise LimitExceeded(problem=f"expands through aliases to more than {MAX_NODES} values",
                                    problem_mark=node.start_mark)
            if depth[key] > MAX_DEPTH:
                raise LimitExceeded(problem=f"nests deeper than {MAX_DEPTH} levels through aliases",
                                    problem_mark=node.start_mark)
            continue
        if key in size:
            continue
        if key in on_path:
            raise LimitExceeded(problem="holds an alias inside the node it refers to (a recursive document)",
                                problem_mark=node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in size)


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
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            return None, [SiteIssue(path, None, "", f"is larger than {MAX_BYTES} bytes",
                                    allowed=f"a site or vars file of at most {MAX_BYTES} bytes")]
        text = raw.decode("utf-8")
    except FileNotFoundError:
        return None, [SiteIssue(path, None, "", "file not found", allowed="a YAML file")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [SiteIssue(path, None, "", f"cannot be read: {exc}")]
    loader = MarkedLoader(text)
    try:
        data = loader.get_single_data()
    except LimitExceeded as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        return None, [SiteIssue(path, line, "", f"YAML document {exc.problem}",
                                allowed=f"at most {MAX_DEPTH} levels and {MAX_NODES} values after aliases")]
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
        SiteIssue(path, line, str(key), "duplicate key: the last value wins, as in Ansible",
                  allowed="each key once per mapping", warning=True)
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
