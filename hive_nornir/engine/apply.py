"""Apply a batch of plans on a host in ONE exec: the files travel on its stdin, each is installed (owned, vetted,
backed up, renamed) at its primitive's place in the script, the commands run in order, and the probes the changes
may have altered run at the end of the same script."""

from __future__ import annotations

import posixpath
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hive_nornir.engine.errors import CommandFailed
from hive_nornir.engine.probe import batch_script, last_section, split_output, without_markers
from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Plan, Primitive, Upload
from hive_nornir.primitives.probes import argv, q
from hive_nornir.transport.describe import describe_command
from hive_nornir.transport.errors import CommandTimeout

if TYPE_CHECKING:
    from hive_nornir.engine.protocols import Session

VALIDATION_FAILED = 97  # exit code the script uses when a candidate is rejected
STAGING = "/var/tmp/.hive-apply-XXXXXXXX"  # mktemp -d template: root's 0700 directory for the stdin files


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


def candidate_path(path: str) -> str:
    """`<dir>/.<name>.hive-<uuid>`: next to the target (same filesystem, so the rename is atomic)."""
    directory, name = posixpath.split(path)
    return posixpath.join(directory, f".{name}.hive-{uuid.uuid4().hex}")


@dataclass
class Batch:
    """Changes applied together, in order, then the probes to run again; `started` says how many changes began
    on the host (all of them after success; up to and including the failing one after a failure)."""

    changes: Sequence[tuple[Primitive, Plan]]
    reprobe: Sequence[Primitive] = ()
    started: int = 0

    @property
    def secret(self) -> bool:
        """One secret primitive hides the whole script from logs and errors."""
        return any(p.secret for p, _plan in self.changes)


def apply_batch(session: Session, batch: Batch, facts: Facts, timeout: float, probe_timeout: float) -> list[str]:
    """Run the batch as root in one exec and return the outputs of its probes (one per `batch.reprobe`).

    Each part is preceded by a marker line on stdout (a shell builtin: no process, no round trip), so a failure
    names the primitive it happened in and a timeout the command that hung; secret commands are named `(secret)`."""
    stamp = time.strftime("%Y%m%d%H%M%S")
    marker = f"@@hive-{secrets.token_hex(6)}"
    parts: list[tuple[str, int]] = []  # (what, index of the change it belongs to)
    script: list[str] = []
    data = bytearray()
    candidates: list[str] = []
    staged = 0

    def mark(what: str, owner: int) -> None:
        script.append(f"echo '{marker} {len(parts)}'")
        parts.append((what, owner))

    for position, (primitive, plan) in enumerate(batch.changes):
        if not plan.uploads and not plan.commands:
            mark(primitive.ident, position)
        for upload in plan.uploads:
            candidate = candidate_path(upload.path)
            candidates.append(candidate)
            mark(f"install {upload.path}" + (f" (validate: {upload.validate})" if upload.validate else ""), position)
            script.append(argv("install", "-m", upload.mode, "-o", upload.owner, "-g", upload.group, "--")
                          + f' "$t/{staged}" ' + q(candidate))
            script.extend(install_script(upload, candidate, stamp))
            data += upload.content
            staged += 1
        for command in plan.commands:
            mark("(secret)" if primitive.secret else describe_command(command), position)
            script.append(command)
    probe_marker = ""
    if batch.reprobe:
        mark("probe", len(batch.changes))
        probes, probe_marker = batch_script(batch.reprobe, facts)
        script += ["set +e", probes]
    prelude = ["set -e"]
    if staged:  # the stdin files first, before any command could read stdin; then stdin is /dev/null
        prelude.append(f"t=$(mktemp -d {STAGING})")
        prelude.append(argv("trap", 'rm -rf -- "$t" ' + argv(*candidates), "EXIT"))
        uploads = [u for _p, plan in batch.changes for u in plan.uploads]
        prelude += [f'head -c {len(upload.content)} > "$t/{k}"' for k, upload in enumerate(uploads)]
        prelude.append("exec </dev/null")
    text = "\n".join(prelude + script)
    total = timeout + (probe_timeout if batch.reprobe else 0)
    try:
        result = session.run(text, timeout=total, stdin=bytes(data) if staged else None, secret=batch.secret)
    except CommandTimeout as e:
        index = last_section(e.stdout, marker)
        batch.started = _started(parts, index, len(batch.changes))
        hung = _what(parts, index, batch, e.stdout, probe_marker)
        raise CommandTimeout(e.host, e.port, f"`{hung}` exceeded its {total:g}s timeout and was abandoned",
                             hung, without_markers(e.stdout, marker), e.stderr) from e
    except Exception:
        batch.started = len(batch.changes)  # the connection died: any of them may have run
        raise
    if not result.ok:
        index = last_section(result.stdout, marker)
        batch.started = _started(parts, index, len(batch.changes))
        primitive, plan = batch.changes[max(batch.started, 1) - 1]
        raise CommandFailed(plan.summary or primitive.ident, result.exit_status,
                            result.stderr or without_markers(result.stdout, marker))
    batch.started = len(batch.changes)
    if not batch.reprobe:
        return []
    return split_output(result.stdout, probe_marker, len(batch.reprobe))


def _started(parts: list[tuple[str, int]], index: int | None, count: int) -> int:
    """Changes that began: those up to the owner of the last part whose marker came out."""
    if index is None:
        return 0
    return min(parts[index][1] + 1, count)


def _what(parts: list[tuple[str, int]], index: int | None, batch: Batch, stdout: str, probe_marker: str) -> str:
    """The part that hung, or the primitive whose probe did."""
    if index is None:
        return (batch.changes[0][1].summary or "apply") if batch.changes else "apply"
    what, owner = parts[index]
    if owner == len(batch.changes) and probe_marker:
        at = last_section(stdout, probe_marker)
        return f"probe of {batch.reprobe[at].ident}" if at is not None and at < len(batch.reprobe) else \
            "the batched probe"
    return what
