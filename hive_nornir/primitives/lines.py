"""Lines and blocks in files the site does not own: edited in Python, installed as a whole-file upload."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Plan, Primitive, Upload
from hive_nornir.primitives.probes import file_probe, parse_file
from hive_nornir.primitives.resources import parent_exists, path

MAX_EDIT_BYTES = 1024 * 1024  # bigger files are not edited line by line: fetching them would cost too much
STATES = ("present", "absent")
_MODE = re.compile(r"^0?[0-7]{3,4}$")


class EditError(ValueError):
    """The file cannot be edited safely (e.g. a BEGIN marker without its END); a human must look."""


def content_probe(path: str) -> str:
    """The shared file probe with the edit limit: stat and base64 of a regular file (symlinks followed, the
    target reported), or why there is none."""
    return file_probe(path, MAX_EDIT_BYTES)


def text_diff(path: str, old: str | None, new: str) -> str:
    """Unified diff `--- path (current)` / `+++ path (desired)`; a new file diffs against /dev/null."""
    before = (old or "").splitlines(keepends=True)
    after = new.splitlines(keepends=True)
    source = path if old is not None else "/dev/null"
    lines = difflib.unified_diff(before, after, fromfile=f"{source} (current)", tofile=f"{path} (desired)")
    no_eol = "\n\\ No newline at end of file\n"
    out = "".join(line if line.endswith("\n") else line + no_eol for line in lines)
    return out.encode("utf-8", "replace").decode("utf-8")  # surrogates from undecodable bytes stay readable


class _TextEdit(Primitive):
    """Shared plan for line/block edits: subclasses only say how the text changes."""

    path: str
    mode: str
    owner: str
    group: str
    create: bool
    backup: bool = True  # subclasses that do not declare it keep making backups

    def _check(self, state: str) -> None:
        """Absolute path, known state, octal mode: mistakes fail at construction."""
        if not self.path.startswith("/") or self.path.endswith("/"):
            raise ValueError(f"path must be an absolute file path, not {self.path!r}")
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
        if not _MODE.match(self.mode):
            raise ValueError(f"mode must be octal like '0644', not {self.mode!r}")

    def edit(self, text: str | None) -> str | None:
        """New text for the current text (None: no file); None result means leave the file alone."""
        raise NotImplementedError

    def describe(self, old: str | None, new: str) -> str:
        """One-line summary of what the edit does."""
        raise NotImplementedError

    def probe(self, facts: Facts) -> str:
        """Mode/owner/size and the whole content (up to 1 MB) in one go: the edit happens in Python."""
        return content_probe(self.path)

    def reads(self) -> frozenset[str]:
        """The whole file (the edit is made on its current text) and whether its directory exists."""
        return frozenset({path(self.path), parent_exists(self.path)})

    def writes(self) -> frozenset[str]:
        """The whole file (uploaded as a whole)."""
        return frozenset({path(self.path)})

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """Edit the text; upload the whole new file keeping the current mode and owner (through a symlink: to
        its target)."""
        state = parse_file(self.path, probe_output)
        if state.exists == "notfile":
            return Plan(error=f"{self.path} exists and is not a regular file")
        if state.exists == "dangling":
            return Plan(error=f"{self.path} is a symlink to {state.target}, which does not exist: "
                              "create the target or remove the link")
        current: str | None = None
        mode, owner, group = self.mode, self.owner, self.group
        if state.is_file:
            if state.stat is not None:
                mode, owner, group = state.stat.mode4, state.stat.user, state.stat.group
                if state.stat.size > MAX_EDIT_BYTES:
                    return Plan(error=f"{self.path} is {state.stat.size} bytes: line/block edits are limited "
                                      f"to {MAX_EDIT_BYTES} bytes; manage it as a whole File instead")
            if state.content is None:
                return Plan(error=f"cannot read {self.path} (probe printed no content)")
            current = state.content.decode("utf-8", "surrogateescape")
        elif state.exists != "no":
            return Plan(error=f"cannot stat {self.path} (probe printed nothing useful)")
        try:
            new = self.edit(current)
        except EditError as exc:
            return Plan(error=str(exc))
        if new is None or new == current:
            return Plan()
        if current is None:
            if not self.create:
                return Plan(missing=f"{self.path} does not exist (create=False)")
            if not state.parent:
                return Plan(missing=f"directory of {self.path} does not exist")
        upload = Upload(state.target, new.encode("utf-8", "surrogateescape"), mode, owner, group,
                        backup=self.backup)
        diff = text_diff(self.path, current, new)
        if self.secret:
            diff = f"(content of {self.path} hidden: secret)"
        return Plan(changed=True, summary=self.describe(current, new), diff=diff, uploads=[upload])


def _lines(text: str | None) -> list[str]:
    """Lines with their endings, so an edit keeps the file's other bytes exactly."""
    return (text or "").splitlines(keepends=True)


def _bare(line: str) -> str:
    """A line without its ending, as patterns and comparisons see it."""
    return line.rstrip("\r\n")


def _append(text: str | None, new_lines: list[str]) -> str:
    """Append lines, first closing an unterminated last line."""
    text = text or ""
    if text and not text.endswith("\n"):
        text += "\n"
    return text + "".join(line + "\n" for line in new_lines)


@dataclass(eq=False)
class LineInFile(_TextEdit):
    """Ensure one line is in a file (replacing every line `regexp` matches), or no such line is."""

    path: str
    line: str = ""
    regexp: str | None = None
    state: str = "present"
    create: bool = True
    mode: str = "0644"  # for a file we create; an existing file keeps its mode and owner
    owner: str = "root"
    group: str = "root"
    secret: bool = False
    backup: bool = True  # keep `<path>.<stamp>.hive~` of the file as it was before each change
    kind = "line"

    def __post_init__(self) -> None:
        """A line with a newline in it would be two lines and never match itself."""
        self._check(self.state)
        if "\n" in self.line or "\r" in self.line:
            raise ValueError("line must not contain a line break")
        if self.state == "present" and not self.line:
            raise ValueError("state=present needs a line")
        if self.state == "absent" and not (self.line or self.regexp):
            raise ValueError("state=absent needs a line or a regexp")
        self._pattern = re.compile(self.regexp) if self.regexp else None

    @property
    def ident(self) -> str:
        """Reports name the file and what identifies the line (never a secret line's text)."""
        return f"line[{self.path}:{self.regexp or ('(secret)' if self.secret else self.line)}]"

    def _matches(self, line: str) -> bool:
        """By regexp when given (re.search), else exact text."""
        return bool(self._pattern.search(_bare(line))) if self._pattern else _bare(line) == self.line

    def edit(self, text: str | None) -> str | None:
        """Replace every regexp match; else keep an exact copy; else append. Absent removes matches."""
        lines = _lines(text)
        if self.state == "absent":
            kept = [ln for ln in lines if not self._matches(ln)]
            return None if len(kept) == len(lines) else "".join(kept)
        if self._pattern and any(self._matches(ln) for ln in lines):
            ending = "\n"
            return "".join(self.line + (ln[len(_bare(ln)):] or ending) if self._matches(ln) else ln
                           for ln in lines)
        if any(_bare(ln) == self.line for ln in lines):
            return text
        return _append(text, [self.line])

    def describe(self, old: str | None, new: str) -> str:
        """create / add / replace / remove, with the path."""
        if self.state == "absent":
            return f"remove line from {self.path}"
        if old is None:
            return f"create {self.path} with line"
        if self._pattern and any(self._matches(ln) for ln in _lines(old)):
            return f"replace line in {self.path}"
        return f"add line to {self.path}"


@dataclass(eq=False)
class BlockInFile(_TextEdit):
    """Ensure a marked block of lines in a file; other content (including other blocks) stays as it is."""

    path: str
    block: str = ""
    marker: str = "# {mark} HIVE MANAGED BLOCK"
    state: str = "present"
    create: bool = True
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    secret: bool = False
    insertbefore: str | None = None  # "BOF": a new block goes at the top (like blockinfile); else at the end
    backup: bool = True  # keep `<path>.<stamp>.hive~` of the file as it was before each change
    kind = "block"

    def __post_init__(self) -> None:
        """Both markers must differ and be single lines, or the block could never be found again."""
        self._check(self.state)
        if "{mark}" not in self.marker or "\n" in self.marker:
            raise ValueError("marker must be one line containing {mark}")
        if self.insertbefore not in (None, "BOF"):
            raise ValueError(f"insertbefore must be None or 'BOF', not {self.insertbefore!r}")

    @property
    def begin(self) -> str:
        """First line of the block."""
        return self.marker.replace("{mark}", "BEGIN")

    @property
    def end(self) -> str:
        """Last line of the block."""
        return self.marker.replace("{mark}", "END")

    @property
    def ident(self) -> str:
        """Reports name the file and the marker."""
        return f"block[{self.path}:{self.begin}]"

    def _span(self, lines: list[str]) -> tuple[int, int] | None:
        """Indexes of the BEGIN and END lines, None when the block is not there."""
        starts = [i for i, ln in enumerate(lines) if _bare(ln) == self.begin]
        ends = [i for i, ln in enumerate(lines) if _bare(ln) == self.end]
        if not starts and not ends:
            return None
        if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
            raise EditError(f"{self.path}: markers {self.begin!r}/{self.end!r} are unbalanced "
                            f"({len(starts)} BEGIN, {len(ends)} END); fix the file by hand")
        return starts[0], ends[0]

    def edit(self, text: str | None) -> str | None:
        """Replace the marked span where it is, or add it (at the top with insertbefore BOF, else at the end);
        empty block or absent removes the span."""
        lines = _lines(text)
        span = self._span(lines)
        body = self.block.rstrip("\n")
        if self.state == "absent" or not body:
            if span is None:
                return None
            return "".join(lines[:span[0]] + lines[span[1] + 1:])
        wanted = [f"{line}\n" for line in (self.begin, *body.split("\n"), self.end)]
        if span is None:
            if self.insertbefore == "BOF":
                return "".join(wanted) + (text or "")
            return _append(text, [ln[:-1] for ln in wanted])
        return "".join(lines[:span[0]] + wanted + lines[span[1] + 1:])

    def describe(self, old: str | None, new: str) -> str:
        """insert / update / remove, with the path."""
        if self.state == "absent" or not self.block.strip("\n"):
            return f"remove block from {self.path}"
        if old is None:
            return f"create {self.path} with block"
        return f"{'update' if self.begin in old else 'insert'} block in {self.path}"
