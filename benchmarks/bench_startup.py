"""Benchmark: what the controller pays before the first host is touched (interpreter, imports, site, inventory).

    .venv/bin/python benchmarks/bench_startup.py [--repeat 7]

Each command runs in a fresh interpreter `--repeat` times; the median wall time and the peak RSS of the child are
reported, then the heaviest imports of `python -m hive_nornir run` (from `python -X importtime`). No hosts: the
commands stop before a connection (`--help`, `inventory --json` of the embedded site, the setup-hosts runbook import).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

PY = sys.executable
COMMANDS: dict[str, list[str]] = {
    "python -c pass (the interpreter alone)": [PY, "-c", "pass"],
    "python -m hive_nornir --help": [PY, "-m", "hive_nornir", "--help"],
    "python -m hive_nornir inventory --json (embedded site)": [PY, "-m", "hive_nornir", "inventory", "--json"],
    "import the setup-hosts runbook (what `run` loads)": [PY, "-c", "import hive_nornir.runbooks.setup_hosts"],
}


def timed(argv: list[str], cwd: str) -> tuple[float, float, int]:
    """Wall and CPU seconds and the child's own peak RSS in KiB (wait4 gives that one child's usage)."""
    t0 = time.perf_counter()
    with open(os.devnull, "w") as null:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=null, stderr=null)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit {proc.returncode}")
    return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime, int(usage.ru_maxrss)


def heaviest_imports(cwd: str, top: int) -> list[tuple[int, str]]:
    """The modules with the largest cumulative import time under `python -m hive_nornir run --help`."""
    done = subprocess.run([PY, "-X", "importtime", "-c", "import hive_nornir.cli, hive_nornir.runbooks.setup_hosts"],
                          cwd=cwd, capture_output=True, text=True, timeout=120, check=True)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            depth = (len(name) - len(name.lstrip())) // 2
            if depth <= 2:
                rows.append((int(parts[1]), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    """Print a markdown table for the README."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hn-bench-startup-") as cwd:  # no project here: the embedded site
        print("| command | median wall | median CPU | peak RSS |\n|---|---|---|---|")
        for label, argv in COMMANDS.items():
            runs = [timed(argv, cwd) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            rss = max(r[2] for r in runs)
            print(f"| {label} | {wall * 1000:.0f} ms | {cpu * 1000:.0f} ms | {rss / 1024:.0f} MiB |")
        print("\nheaviest imports (cumulative, top level and two below):")
        for micros, name in heaviest_imports(cwd, 12):
            print(f"  {micros / 1000:7.1f} ms  {name}")
    print(f"\n(python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, "
          f"self RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB)")


if __name__ == "__main__":
    main()
