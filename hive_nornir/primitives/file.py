"""File from content or a Jinja2 template: compared by hash, shown as a diff, installed atomically."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Plan, Primitive, Upload
from hive_nornir.primitives.probes import argv, file_probe, parse_file
from hive_nornir.primitives.resources import ACCOUNTS, parent_exists, path
from hive_nornir.primitives.templates import TemplateError, environment, render, render_in, search_path

MAX_DIFF_BYTES = 256 * 1024  # bigger files are compared by hash only; their content is not fetched


@dataclass(eq=False)
class File(Primitive):
    """Ensure a file has exactly this content, mode and owner; `validate` vets the candidate first."""

    path: str
    content: str | bytes
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    validate: str | None = None
    backup: bool = True
    secret: bool = False
    kind = "file"

    @property
    def ident(self) -> str:
        """Reports name the file by its path."""
        return f"file[{self.path}]"

    @property
    def data(self) -> bytes:
        """Content as bytes: hashes and uploads work on bytes."""
        return self.content.encode() if isinstance(self.content, str) else self.content

    def probe(self, facts: Facts) -> str:
        """Kind, stat and hash of the file (a symlink is followed: its target is what we manage); the old
        content only when it differs and is small enough to diff."""
        return file_probe(self.path, MAX_DIFF_BYTES, skip_sha=hashlib.sha256(self.data).hexdigest())

    def reads(self) -> frozenset[str]:
        """The path (and its directories: the probe asks whether the parent exists); the account names when the
        owner is not root, since stat prints names only for accounts that exist."""
        named = {ACCOUNTS} if (self.owner, self.group) != ("root", "root") else set()
        return frozenset({path(self.path), parent_exists(self.path)} | named)

    def writes(self) -> frozenset[str]:
        """The path (a symlink's target is not known before the probe: two primitives on one file through
        different names are not told apart)."""
        return frozenset({path(self.path)})

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """Decide between nothing, a content upload, and a chmod/chown; through a symlink both go to its target."""
        state = parse_file(self.path, probe_output)
        if state.exists == "notfile":
            return Plan(error=f"{self.path} exists and is not a regular file")
        if state.exists == "dangling":
            return Plan(error=f"{self.path} is a symlink to {state.target}, which does not exist: "
                              "create the target or remove the link")
        upload = Upload(state.target, self.data, self.mode, self.owner, self.group, self.validate, self.backup)
        if state.exists == "no":
            if not state.parent:
                return Plan(changed=True, summary=f"create {self.path}", uploads=[upload],
                            missing=f"directory of {self.path} does not exist")
            return Plan(changed=True, summary=f"create {self.path}", uploads=[upload],
                        diff=self._diff(b"", "/dev/null"))
        if state.exists != "yes" or state.stat is None:
            return Plan(error=f"cannot inspect {self.path} (probe printed nothing useful)")
        where = self.path if state.target == self.path else f"{self.path} -> {state.target}"
        if state.sha != hashlib.sha256(self.data).hexdigest():
            diff = (self._diff(state.content, self.path) if state.content is not None
                    else "(content differs; file too large to diff)")
            return Plan(changed=True, summary=f"update {where}", uploads=[upload], diff=diff)
        commands: list[str] = []
        notes: list[str] = []
        if not state.stat.mode_is(self.mode):
            commands.append(argv("chmod", self.mode, state.target))
            notes.append(f"mode {state.stat.mode} -> {self.mode}")
        if (state.stat.user, state.stat.group) != (self.owner, self.group):
            commands.append(argv("chown", f"{self.owner}:{self.group}", state.target))
            notes.append(f"owner {state.stat.user}:{state.stat.group} -> {self.owner}:{self.group}")
        if not commands:
            return Plan()
        return Plan(changed=True, summary=f"{where}: " + ", ".join(notes), commands=commands,
                    diff="\n".join(notes))

    def _diff(self, old: bytes | None, old_name: str) -> str:
        """Unified diff of old vs desired; secrets and binary files say so instead of showing bytes."""
        if self.secret:
            return f"(content of {self.path} hidden: secret)"
        try:
            old_text = (old or b"").decode()
            new_text = self.data.decode()
        except UnicodeDecodeError:
            return f"(binary content of {self.path} differs)"
        lines = difflib.unified_diff(
            old_text.splitlines(keepends=True), new_text.splitlines(keepends=True),
            fromfile=f"{old_name} (current)", tofile=f"{self.path} (desired)",
        )
        return "".join(lines)


def template_env() -> jinja2.Environment:
    """The Jinja2 environment of this run's search path (the project's templates/, then the package's)."""
    return environment(search_path())


@dataclass(eq=False)
class TemplateFile(File):
    """A File rendered from a Jinja2 template when its step runs, so the run's project templates/ is searched."""

    content: str | bytes = ""  # unused: the content is the rendered template (see data)
    template: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    _rendered: dict[tuple[Path, ...], bytes] = field(default_factory=dict, init=False, repr=False)

    @property
    def data(self) -> bytes:
        """The rendered template, once per search path (one instance may serve a whole run of hosts)."""
        path = search_path()
        if path not in self._rendered:
            self._rendered[path] = render_in(path, self.template, self.variables).encode()
        return self._rendered[path]


def Template(path: str, template: str, variables: dict[str, Any] | None = None, **file_kw: Any) -> TemplateFile:
    """A file on the host from a Jinja2 template: `<project>/templates/` first, then hive_nornir's (README)."""
    return TemplateFile(path=path, template=template, variables=dict(variables or {}), **file_kw)


__all__ = ["MAX_DIFF_BYTES", "File", "Template", "TemplateError", "TemplateFile", "render", "template_env"]
