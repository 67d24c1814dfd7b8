"""Run a primitive's probe exactly as the engine batches it, with this machine's /bin/sh (dash on Debian)."""

from __future__ import annotations

import subprocess

from hive_nornir.engine.probe import batch_script, split_output
from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Primitive


def run_probe(primitive: Primitive, facts: Facts) -> str:
    """Check the snippet parses as POSIX sh, then run it inside the engine's batch wrapper."""
    script, marker = batch_script([primitive], facts)
    syntax = subprocess.run(["/bin/sh", "-n", "-c", primitive.probe(facts)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=60)
    return split_output(done.stdout, marker, 1)[0]
