"""Apply a Plan on a host: stage uploads in their target dirs, validate, back up, rename, then run commands."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

from hive_nornir.engine.errors import CommandFailed
from hive_nornir.engine.probe import last_section, without_markers
from hive_nornir.primitives.base import Plan, Upload
from hive_nornir.primitives.probes import argv, q
from hive_nornir.transport.describe import describe_command
from hive_nornir.transport.errors import CommandTimeout

if TYPE_CHECKING:
    from hive_nornir.transport.session import SSHSession

VALIDATION_FAILED = 97  # exit code the script uses when a candidate is rejected


def install_script(upload: Upload, candidate: str, stamp: str) -> list[str]:
    """Shell lines that vet the candidate and swap it in; the live file is untouched unless it passes."""
    lines = []
    if upload.validate:  # the site's command text, with %s for the candidate (quoted)
        check = upload.validate.replace("%s", q(candidate))
        lines.append(
            f"if ! ( {check} ) >&2; then {argv('rm', '-f', candidate)}; "
            f"{argv('echo', f'hive: {upload.path}: candidate rejected by: {upload.validate}')} >&2; "
            f"exit {VALIDATION_FAILED}; fi"
        )
    if upload.backup:
        lines.append(f"if {argv('test', '-f', upload.path)}; then "
                     f"{argv('cp', '-p', upload.path, f'{upload.path}.{stamp}.hive~')}; fi")
    lines.append(argv("mv", "-f", candidate, upload.path))
    return lines


def apply_plan(session: SSHSession, plan: Plan, timeout: float, secret: bool = False) -> None:
    """Install every upload atomically, then run the commands, all as root in one exec after staging.

    Each part is preceded by a marker line on stdout (a shell builtin: no process, no round trip), so a timeout
    names the command that hung rather than the script's first line; secret commands are named `(secret)`."""
    stamp = time.strftime("%Y%m%d%H%M%S")
    marker = f"@@hive-{secrets.token_hex(6)}"
    parts: list[str] = []
    candidates: list[str] = []
    script: list[str] = ["set -e"]

    def mark(what: str) -> None:
        script.append(f"echo '{marker} {len(parts)}'")
        parts.append(what)

    try:
        for upload in plan.uploads:
            candidate = session.stage_file(upload.content, upload.path, upload.mode, upload.owner, upload.group)
            candidates.append(candidate)
            mark(f"install {upload.path}" + (f" (validate: {upload.validate})" if upload.validate else ""))
            script.extend(install_script(upload, candidate, stamp))
    except Exception:
        _remove(session, candidates)
        raise
    if candidates:
        script.insert(1, argv("trap", argv("rm", "-f", *candidates), "EXIT"))
    for command in plan.commands:
        mark("(secret)" if secret else describe_command(command))
        script.append(command)
    if not parts:
        return
    try:
        result = session.run("\n".join(script), timeout=timeout, secret=secret)
    except CommandTimeout as e:
        index = last_section(e.stdout, marker)
        hung = parts[index] if index is not None else (plan.summary or "apply")
        raise CommandTimeout(e.host, e.port, f"`{hung}` exceeded its {timeout:g}s timeout and was abandoned",
                             hung, without_markers(e.stdout, marker), e.stderr) from e
    if not result.ok:
        raise CommandFailed(plan.summary or "apply", result.exit_status,
                            result.stderr or without_markers(result.stdout, marker))


def _remove(session: SSHSession, candidates: list[str]) -> None:
    """Best effort: never leave half-staged candidates behind after an error."""
    if candidates:
        session.run(argv("rm", "-f", *candidates), timeout=30)
