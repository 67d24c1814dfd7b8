"""File from content or a Jinja2 template: compared by hash, shown as a diff, installed atomically."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

import jinja2

from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Plan, Primitive, Upload
from hive_nornir.primitives.probes import argv, file_probe, parse_file

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


@lru_cache(maxsize=1)
def template_env() -> jinja2.Environment:
    """One shared Jinja2 environment over the packaged templates (nornir_jinja2 makes one per call)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(files("hive_nornir.templates"))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - config files, not HTML
    )


def render(template: str, **variables: Any) -> str:
    """Render a packaged template; a missing variable is an error, never an empty string."""
    return template_env().get_template(template).render(**variables)


def Template(path: str, template: str, variables: dict[str, Any] | None = None, **file_kw: Any) -> File:
    """A File whose content comes from a packaged Jinja2 template (reads like a primitive in tasks)."""
    return File(path=path, content=render(template, **(variables or {})), **file_kw)
