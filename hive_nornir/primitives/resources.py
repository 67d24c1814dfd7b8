"""What a primitive's probe reads and its change writes, as resource names, so the engine knows which changes of a
step are independent (applied together) and which probes an earlier change can alter (probed again).

A resource is a string: `*` (anything: the safe default of a primitive that declares nothing), `path:/abs/path`
(a file or a directory and everything under it), `path:/abs/path#part` (one part of it: one key's line in a shared
sysctl.d file, or `#exists`, whether a directory is there, which a probe asking "does the parent exist" reads and
`install -d` or `mkdir -p` of anything below it writes), or a named database such as `accounts` (passwd, group,
shadow), `packages` or `units` (systemd's view of its units). Two resources overlap when either is `*`, when they
are the same name, or when they are paths and one is the other or lies under it, where a part only overlaps the
same part, the whole path, or a whole path above it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

ANY = "*"
ACCOUNTS = "accounts"
PACKAGES = "packages"
UNITS = "units"
EVERYTHING = frozenset({ANY})


def path(p: str, part: str = "") -> str:
    """The resource of a path (normalised), or of one part of a file."""
    norm = posixpath.normpath(p) if p.startswith("/") else p
    return f"path:{norm}#{part}" if part else f"path:{norm}"


def exists(p: str) -> str:
    """Whether the directory `p` is there (not what is in it)."""
    return path(p, "exists")


def parent_exists(p: str) -> str:
    """Whether the directory holding `p` is there: what a probe reports as `parent=yes`."""
    return exists(posixpath.dirname(posixpath.normpath(p)) or "/")


def made_with_parents(p: str) -> frozenset[str]:
    """What `install -d P` or `mkdir -p P` writes: P and whether each directory above it exists (but `/`)."""
    norm = posixpath.normpath(p)
    items = {path(norm)}
    while posixpath.dirname(norm) != "/":
        norm = posixpath.dirname(norm)
        items.add(exists(norm))
    return frozenset(items)


def _under(child: str, parent: str) -> bool:
    """`child` is `parent` or lies below it."""
    return child == parent or parent == "/" or child.startswith(parent.rstrip("/") + "/")


def overlaps(a: str, b: str) -> bool:
    """Whether a change to one of these resources can alter what a probe of the other sees."""
    if a == ANY or b == ANY:
        return True
    if not (a.startswith("path:") and b.startswith("path:")):
        return a == b
    pa, _, parta = a[5:].partition("#")
    pb, _, partb = b[5:].partition("#")
    if pa == pb:
        return not parta or not partb or parta == partb
    return (_under(pa, pb) and not partb) or (_under(pb, pa) and not parta)  # a part holds nothing below it


def conflict(these: Iterable[str], those: Iterable[str]) -> bool:
    """Any resource of one set overlaps one of the other."""
    others = list(those)
    return any(overlaps(a, b) for a in these for b in others)
