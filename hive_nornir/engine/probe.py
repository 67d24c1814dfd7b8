"""Batch the probes of many primitives into one shell script, and split its output back per primitive."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Primitive


def batch_script(primitives: Sequence[Primitive], facts: Facts) -> tuple[str, str]:
    """One script for all probes; a random marker keeps probe output from faking a section boundary."""
    marker = f"@@hive-{secrets.token_hex(6)}"
    parts = []
    for index, primitive in enumerate(primitives):
        parts.append(f"echo '{marker} {index}'\n( {primitive.probe(facts)}\n) 2>/dev/null </dev/null || true\n")
    parts.append(f"echo '{marker} end'\n")
    return "".join(parts), marker


def split_output(output: str, marker: str, count: int) -> list[str]:
    """Cut the batched output into one text per primitive; a missing section means the script died."""
    sections: dict[int, list[str]] = {}
    current: int | None = None
    finished = False
    for line in output.splitlines():
        if line.startswith(marker + " "):
            tag = line[len(marker) + 1:]
            if tag == "end":
                finished = True
                current = None
                continue
            current = int(tag)
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    if not finished or len(sections) != count:
        raise ProbeError(f"probe script ended early: got {len(sections)} of {count} sections")
    return ["\n".join(sections[i]) for i in range(count)]


def last_section(output: str, marker: str) -> int | None:
    """The section a cut-off script was in (its last marker), to name the part that hung."""
    last = None
    for line in output.splitlines():
        if line.startswith(marker + " "):
            tag = line[len(marker) + 1:]
            last = int(tag) if tag.isdigit() else last
    return last


def without_markers(output: str, marker: str) -> str:
    """Output with the section markers taken out, for error messages."""
    return "\n".join(ln for ln in output.splitlines() if not ln.startswith(marker + " "))


class ProbeError(RuntimeError):
    """The batched probe did not run to its end marker."""
