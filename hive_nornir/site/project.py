"""Which project a command means: walk up from the start directory the way git finds its repository.

A project root is a directory whose `inventory/` holds the site file (the one `*.yml` with `plugin:
hive_inventory`); `.hive/` lives there. The embedded lab site is used only when no project is found anywhere
above, and every use of it is announced on stderr, so a notebook or a command run from a subdirectory never
silently gets a lab (and a `.hive/`) of its own.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .errors import SiteError
from .loader import SITE_FILE, default_site_dir, find_site


@dataclass(frozen=True)
class Project:
    """Where the site file is and where the stage state (`.hive/`) goes."""

    root: Path
    site_file: Path
    start: Path
    found: bool                      # False: no project above start, the embedded lab site is used
    skipped: tuple[Path, ...] = field(default=())  # inventory/ dirs above start that hold no usable site file

    @property
    def embedded(self) -> bool:
        """True when the site is the package's own lab site (also when a project's inventory/ links to it)."""
        return self.site_file.resolve().parent == default_site_dir().resolve()


def find_project(start: str | Path = ".") -> Project:
    """The nearest directory at or above `start` whose inventory/ holds the site file.

    A broken inventory/ in `start` itself is an error (a misnamed site file must not switch to the lab site);
    one further up is skipped and named when the embedded site ends up being used.
    """
    begin = Path(start).resolve()
    if not begin.is_dir():
        find_site(begin)  # raises the "project root does not exist / is not a directory" error
    skipped: list[Path] = []
    for directory in (begin, *begin.parents):
        if not (directory / "inventory").exists():
            continue
        try:
            site = find_site(directory)
        except SiteError:
            if directory == begin:
                raise
            skipped.append(directory / "inventory")
            continue
        return Project(root=directory, site_file=site, start=begin, found=True)
    return Project(root=begin, site_file=default_site_dir() / SITE_FILE, start=begin, found=False,
                   skipped=tuple(skipped))


def project_of_site_file(site_file: str | Path, start: str | Path = ".") -> Project:
    """An explicit site file (-i): its project is the directory above its inventory/, else `start`."""
    path = Path(site_file).resolve()
    begin = Path(start).resolve()
    root = path.parent.parent if path.parent.name == "inventory" else begin
    return Project(root=root, site_file=path, start=begin, found=True)


def announce(project: Project, stream: TextIO | None = None) -> None:
    """Say on stderr that the embedded lab site is in use, and where its state goes (every time)."""
    if not project.embedded:
        return
    out = stream if stream is not None else sys.stderr
    if project.found:
        why = f"the site file {project.site_file} is the package's own"
    else:
        why = (f"no project found: no inventory/ with a 'plugin: hive_inventory' site file in {project.start} "
               f"or any directory above")
        if project.skipped:
            why += " (skipped: " + ", ".join(str(p) for p in project.skipped) + ")"
    out.write(f"hive_nornir: using the embedded lab site {project.site_file.parent} ({why}); "
              f"stage state in {project.root / '.hive'}\n")
    out.flush()
