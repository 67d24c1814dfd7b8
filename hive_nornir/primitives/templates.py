"""Where Jinja2 templates come from: the project's own templates/ first, then the ones shipped in hive_nornir.

The engine sets the run's project directories around every step (`project_templates`), so `render` and
`Template` in any task, including hive_nornir's own, find a project template before a packaged one of the same name.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2

from hive_nornir.engine.errors import StepFailed

_PROJECT_DIRS: contextvars.ContextVar[tuple[Path, ...]] = contextvars.ContextVar("hive_templates", default=())


class TemplateError(StepFailed):
    """A template that is missing, malformed, or uses a variable nobody gave it: the step fails on that host."""


def package_templates() -> Path:
    """hive_nornir's own templates (hive_nornir/templates/<domain>/...)."""
    return Path(str(files("hive_nornir.templates")))


@contextmanager
def project_templates(dirs: Sequence[Path]) -> Iterator[None]:
    """Search these project directories before the package's while the block runs (one step on one host)."""
    token = _PROJECT_DIRS.set(tuple(dirs))
    try:
        yield
    finally:
        _PROJECT_DIRS.reset(token)


def search_path(dirs: Sequence[Path] | None = None) -> tuple[Path, ...]:
    """The directories a template name is looked up in, in order: the project's (this run's), then the package's."""
    return (*(_PROJECT_DIRS.get() if dirs is None else tuple(dirs)), package_templates())


@lru_cache(maxsize=16)
def environment(path: tuple[Path, ...]) -> jinja2.Environment:
    """One Jinja2 environment per search path; it re-reads a template whose file changed (a notebook edits one)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in path]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - config files, not HTML
    )


def render(template: str, **variables: Any) -> str:
    """Render a template by name in this run's search path; a missing template or variable is an error naming it."""
    return render_in(search_path(), template, variables)


def render_in(path: tuple[Path, ...], template: str, variables: dict[str, Any]) -> str:
    """Render with an explicit search path (the API's preview outside a run)."""
    try:
        return environment(path).get_template(template).render(**variables)
    except jinja2.TemplateError as exc:
        raise TemplateError(explain(exc, template, path)) from exc


def explain(exc: BaseException, template: str, path: tuple[Path, ...]) -> str:
    """One line an operator can act on: which template, where it was looked for, which line or variable."""
    if isinstance(exc, jinja2.TemplateNotFound):
        return f"template {exc.name!r} not found; looked in {', '.join(str(p) for p in path)}"
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"template {template}: {exc.filename or template}:{exc.lineno}: {exc.message}"
    if isinstance(exc, jinja2.TemplateError):
        return f"template {template}: {exc.message}"
    return f"template {template}: {type(exc).__name__}: {exc}"
