"""How a script is named in logs and errors; no paramiko here, so the engine can import it cheaply."""

from __future__ import annotations

import re

_SCAFFOLD_RE = re.compile(r"^(set( [-+][a-z]+| -o \w+)+|trap .*|echo '@@hive-[0-9a-f]+ [0-9a-z]+'|#.*)$")


def describe_command(script: str, limit: int = 120) -> str:
    """The line a human recognises a script by: the first one that is not `set -e`, a trap, a marker or a comment."""
    lines = [ln.strip() for ln in script.strip().splitlines() if ln.strip()]
    meaningful = [ln for ln in lines if not _SCAFFOLD_RE.match(ln)] or lines or [script.strip()]
    text = meaningful[0] + (" ..." if len(meaningful) > 1 else "")
    return text if len(text) <= limit else text[: limit - 3] + "..."
