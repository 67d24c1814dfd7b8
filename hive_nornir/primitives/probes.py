"""The shared probes and their parsers: commands from argument lists, `key=value` output, stat, file content, the
SSH session's address. Every primitive and task reads the host through these, so a fix lands once."""

from __future__ import annotations

import base64
import posixpath
import shlex
from collections.abc import Iterator
from dataclasses import dataclass


def q(value: str) -> str:
    """Shell-quote one word (for the rare shell word that is not a whole command, e.g. a redirect target)."""
    return shlex.quote(value)


def argv(*args: str | int) -> str:
    """One shell command from its argument list: every word quoted, nothing pasted into a string."""
    return shlex.join(str(a) for a in args)


# -- key=value output ----------------------------------------------------------------------------------------
def kv_lines(text: str) -> Iterator[tuple[str, str]]:
    """Every `key=value` line a probe printed, in order (for keys that repeat, e.g. one line per disk)."""
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            yield key.strip(), value


def parse_kv(text: str) -> dict[str, str]:
    """The `key=value` lines a probe printed as a dict (the last one of a key wins; values kept as printed)."""
    return dict(kv_lines(text))


# -- stat ----------------------------------------------------------------------------------------------------
# Symlinks are followed (-L) everywhere: a primitive manages what a link points at, as Ansible's file/copy and
# hive-builder do by default; chmod/chown follow links too, so what we read is what a fix would change.
STAT_FORMAT = "%a %U %G %s %u %g"
# the file probe's stat line: mode, names and size, the four fields every reader of file_probe output expects
FILE_STAT_FORMAT = "%a %U %G %s"


def stat_command(key: str, word: str, fmt: str = STAT_FORMAT) -> str:
    """`stat -L` printing `KEY=mode user group size uid gid` (or `fmt`); `word` is an already quoted shell word."""
    return f"stat -L -c {q(key + '=' + fmt)} -- {word}"


def stat_probe(path: str, key: str = "stat") -> str:
    """Read-only: mode, owner and size of `path` (following symlinks) on one `key=` line; nothing if absent."""
    return stat_command(key, q(path))


@dataclass(frozen=True)
class Stat:
    """What `stat_probe` printed about one path."""

    mode: str  # octal as stat prints it, e.g. "644" or "2755"
    user: str
    group: str
    size: int = 0
    uid: str = ""
    gid: str = ""

    def mode_is(self, want: str) -> bool:
        """Same permission bits, however either side spells the octal number ("0644" == "644")."""
        try:
            return int(self.mode, 8) == int(want, 8)
        except ValueError:
            return False

    def owned_by(self, user: str | None, group: str | None) -> bool:
        """Owner and group given by name or number; None means whatever is there."""
        return (user is None or user in (self.user, self.uid)) and (group is None or group in (self.group,
                                                                                                self.gid))

    @property
    def mode4(self) -> str:
        """The mode as four octal digits, the way Upload and chmod get it."""
        return self.mode.zfill(4)


def parse_stat(value: str | None) -> Stat | None:
    """A `stat_probe` value (`mode user group [size [uid gid]]`), None when the probe printed none or junk."""
    fields = (value or "").split()
    if len(fields) < 3 or not fields[0].isdigit():
        return None
    size = int(fields[3]) if len(fields) > 3 and fields[3].isdigit() else 0
    uid, gid = (fields[4], fields[5]) if len(fields) > 5 else ("", "")
    return Stat(fields[0], fields[1], fields[2], size, uid, gid)


def stat_is(path: str, mode: str, owner: str, group: str, by_number: bool = False) -> str:
    """Shell condition for guards: `path` exists with exactly this mode and owner (names, or uid/gid with
    `by_number`), symlinks followed."""
    fmt = "%a %u %g" if by_number else "%a %U %G"
    want = f"{int(mode, 8):o} {owner} {group}"
    return f"[ \"$({argv('stat', '-L', '-c', fmt, '--', path)} 2>/dev/null)\" = {q(want)} ]"


# -- a regular file's state and content ---------------------------------------------------------------------
def file_probe(path: str, max_bytes: int, skip_sha: str | None = None) -> str:
    """Read-only: what is at `path` and, for a regular file (symlinks followed), its stat, the link's target,
    and its content in base64 when it is at most `max_bytes` (with `skip_sha`: only when its sha256 differs,
    so an unchanged file costs no transfer). Prints `exists=yes|no|notfile|dangling`, `stat=mode user group
    size`, `realpath=`, `sha=`, `content=`, `parent=yes|no`."""
    p = q(path)
    parent = q(posixpath.dirname(path) or "/")
    lines = [f"if [ -f {p} ]; then echo exists=yes; s=$({stat_command('stat', p, FILE_STAT_FORMAT)}); "
             "echo \"$s\"; set -f; "
             "set -- $s",
             f"if [ -L {p} ]; then printf 'realpath='; readlink -f -- {p}; fi"]
    send = f"[ \"$4\" -le {int(max_bytes)} ]"
    if skip_sha is not None:
        lines.append(f"h=$(sha256sum < {p} | cut -c1-64); echo \"sha=$h\"")
        send += f" && [ \"$h\" != {q(skip_sha)} ]"
    lines.append(f"if {send}; then printf 'content='; base64 -w0 < {p}; echo; fi")
    lines.append(f"elif [ -L {p} ]; then echo exists=dangling; printf 'realpath='; readlink -- {p}")
    lines.append(f"elif [ -e {p} ]; then echo exists=notfile")
    lines.append(f"else echo exists=no; if [ -d {parent} ]; then echo parent=yes; else echo parent=no; fi; fi")
    return "\n".join(lines)


@dataclass(frozen=True)
class FileState:
    """What `file_probe` printed: kind, stat, where writes go (the link's target), and the content if sent."""

    exists: str  # yes | no | notfile | dangling | "" (the probe printed nothing)
    stat: Stat | None
    target: str  # the path to write: the symlink's resolved target, else the path itself
    sha: str | None
    content: bytes | None  # None: not sent (too large, or unchanged with skip_sha)
    parent: bool

    @property
    def is_file(self) -> bool:
        """A regular file (possibly through a symlink)."""
        return self.exists == "yes"


def parse_file(path: str, output: str) -> FileState:
    """Parse `file_probe` output; `content=` with nothing after it is an empty file, not a missing one."""
    kv = parse_kv(output)
    exists = kv.get("exists", "")
    if not exists and "stat" in kv:  # older canned outputs print stat/content without exists=
        exists = "yes"
    content = base64.b64decode(kv["content"]) if "content" in kv else None
    if content is None and "old" in kv:  # the name File's probe used before the shared probe
        content = base64.b64decode(kv["old"])
    target = kv.get("realpath", "").strip() or path
    return FileState(exists, parse_stat(kv.get("stat")), target, kv.get("sha"), content,
                     kv.get("parent") == "yes")


# -- the SSH session's address ------------------------------------------------------------------------------
# The login shell (an ancestor of the probe) holds SSH_CONNECTION (`client cport server sport`); sudo drops it
# from our own environment. Prints ssh_client= and ssh_port= (the firewall keeps that port open for us).
SESSION_PROBE = (
    "p=$$; while [ \"${p:-1}\" -gt 1 ]; do "
    "e=$(tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^SSH_CONNECTION=//p'); "
    "if [ -n \"$e\" ]; then echo \"ssh_client=${e%% *}\"; echo \"ssh_port=${e##* }\"; break; fi; "
    "p=$(sed 's/^.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f2); done"
)


def port_number(value: str) -> int | None:
    """A TCP port number, or None for anything else."""
    value = value.strip()
    return int(value) if value.isdigit() and 0 < int(value) < 65536 else None


def parse_session(output: str) -> tuple[str, int | None]:
    """(client address, server port) from SESSION_PROBE output; ("", None) when SSH_CONNECTION was not found."""
    kv = parse_kv(output)
    return kv.get("ssh_client", "").strip(), port_number(kv.get("ssh_port", ""))
