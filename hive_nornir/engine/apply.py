"""Apply a Plan on a host: stage uploads in their target dirs, validate, back up, rename, then run commands."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from hive_nornir.engine.errors import CommandFailed
from hive_nornir.primitives.base import Plan, Upload
from hive_nornir.primitives.probes import argv, q

if TYPE_CHECKING:
    from hive_nornir.transport.session import SSHSession

VALIDATION_FAILED = 97  # exit code the script uses when a candidate is rejected


def install_script(upload: Upload, candidate: str, stamp: str) -> list[str]:
    """Shell lines that vet the candidate and swap it in; the live file is untouched unless it passes."""
    cand = q(candidate)
    lines = []
    if upload.validate:
        check = upload.validate.replace("%s", cand)
        lines.append(
            f"if ! ( {check} ) >&2; then rm -f {cand}; "
            f"echo {q(f'hive: {upload.path}: candidate rejected by: {upload.validate}')} >&2; "
            f"exit {VALIDATION_FAILED}; fi"
        )
    if upload.backup:
        lines.append(f"if {argv('test', '-f', upload.path)}; then "
                     f"{argv('cp', '-p', upload.path, f'{upload.path}.{stamp}.hive~')}; fi")
    lines.append(argv("mv", "-f", candidate, upload.path))
    return lines


def apply_plan(session: SSHSession, plan: Plan, timeout: float) -> None:
    """Install every upload atomically, then run the commands, all as root in one exec after staging."""
    stamp = time.strftime("%Y%m%d%H%M%S")
    candidates: list[str] = []
    script: list[str] = ["set -e"]
    try:
        for upload in plan.uploads:
            candidate = session.stage_file(upload.content, upload.path, upload.mode, upload.owner, upload.group)
            candidates.append(candidate)
            script.extend(install_script(upload, candidate, stamp))
    except Exception:
        _remove(session, candidates)
        raise
    if candidates:
        script.insert(1, argv("trap", argv("rm", "-f", *candidates), "EXIT"))
    script.extend(plan.commands)
    if len(script) == 1:
        return
    result = session.run("\n".join(script), timeout=timeout)
    if not result.ok:
        raise CommandFailed(plan.summary or "apply", result.exit_status, result.stderr or result.stdout)


def _remove(session: SSHSession, candidates: list[str]) -> None:
    """Best effort: never leave half-staged candidates behind after an error."""
    if candidates:
        session.run(argv("rm", "-f", *candidates), timeout=30)
