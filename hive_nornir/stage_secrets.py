"""Stage secrets kept on the controller in `.hive/<stage>/<name>` (0600), made once and never shown."""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

from hive_nornir.engine.errors import StepFailed

ALPHABET = string.ascii_letters + string.digits  # safe unquoted in env, SQL, PHP, .env, option and curl files


def stage_secret(context_dir: Path | None, name: str, create: bool, length: int = 24) -> str | None:
    """Read `<context>/<name>`, or make it once atomically; None when absent and not creating (check mode)."""
    if context_dir is None:
        raise StepFailed(f"{name} lives in the stage context dir, and this run has none")
    path = context_dir / name
    if path.exists():
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return path.read_text().strip()
    if not create:
        return None
    context_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = "".join(secrets.choice(ALPHABET) for _ in range(length))
    tmp = context_dir / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    try:
        os.link(tmp, path)  # atomic: a reader never sees a half-written file, and only one writer wins
    except FileExistsError:
        return path.read_text().strip()
    finally:
        tmp.unlink()
    return value
