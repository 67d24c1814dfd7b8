"""Benchmark: the full setup-hosts phase, first run and no-change run, on N lab hosts: time, SSH round trips, memory.

    .venv/bin/python benchmarks/bench_setup_hosts.py [--sizes 4,20] [--repeat 5] [--out benchmarks/results.json]
    .venv/bin/python benchmarks/bench_setup_hosts.py --sizes 1,5,20 --tags ssh-connection,base,hostsfile,users \
        --out benchmarks/results_first_cut.json      # the engine's first cut of the phase

Each size gets its own docker stage (site `benchN`: the default lab site's settings, N-1 hives + a repository, a
mirrored disk per hive), built by the real provider and destroyed afterwards. Hives after the third join the swarm
as workers (a swarm wants an odd, small number of managers).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

from hive_nornir.api import Hive
from hive_nornir.providers import get_provider
from hive_nornir.site import load_site

SITE = """plugin: hive_inventory
name: bench{n}
stages:
  private:
    provider: docker
    cidr: 10.9{i}.0.0/24
    number_of_hosts: {n}
    separate_repository: {sep}
    internal_cidr: 172.31.252.0/22
    mirrored_disk_size: 1
"""
GROUP_VARS = """hive_ntp_servers: ["10.9{i}.0.4"]
hive_venv_pip_packages: []
"""


def bench(n: int, index: int, repeat: int, tags: list[str] | None) -> dict[str, object]:
    """Build an n-host stage, time setup-hosts twice over, tear it down."""
    root = Path(tempfile.mkdtemp(prefix=f"hive-bench{n}-"))
    (root / "inventory").mkdir()
    (root / "inventory" / "hive.yml").write_text(SITE.format(n=n, i=index, sep="true" if n > 1 else "false"))
    (root / "inventory" / "group_vars").mkdir()
    (root / "inventory" / "group_vars" / "all.yml").write_text(GROUP_VARS.format(i=index))
    (root / "inventory" / "host_vars").mkdir()
    for k in range(3, n - 1):
        (root / "inventory" / "host_vars" / f"p-hive{k}.bench{n}.yml").write_text("hive_swarm_mode: worker\n")
    site = load_site(root / "inventory" / "hive.yml")
    provider = get_provider("docker")
    context = root / ".hive" / "private"
    t0 = time.monotonic()
    provider.build(site, "private", context, lambda m: None)
    build_s = time.monotonic() - t0
    try:
        hive = Hive(root=root, stage="private")
        first = hive.run("setup-hosts", tags=tags)
        assert first.exit_code == 0, first.text()
        nochange = []
        trips: list[int] = []
        for _ in range(repeat):
            t = time.monotonic()
            report = hive.run("setup-hosts", tags=tags)
            nochange.append(time.monotonic() - t)
            assert report.changed == 0 and report.exit_code == 0, report.text()
            trips = [s.round_trips for s in report.summaries()]
        return {"hosts": n, "build_infra_s": round(build_s, 2), "first_run_s": round(first.seconds, 2),
                "first_run_changes": first.changed, "nochange_median_s": round(statistics.median(nochange), 3),
                "nochange_min_s": round(min(nochange), 3), "round_trips_per_host": max(trips),
                "steps": len({o.step for o in report.outcomes}),
                "controller_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    finally:
        provider.destroy(site, "private", context, lambda m: None)


def main() -> None:
    """Run every size and print a markdown table for the README."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="4,20")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results.json")
    parser.add_argument("--tags", default="", help="comma-separated step tags (default: the whole phase)")
    args = parser.parse_args()
    tags = [t for t in args.tags.split(",") if t] or None
    rows = [bench(int(n), i, args.repeat, tags) for i, n in enumerate(args.sizes.split(","))]
    Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    print("| hosts | build-infra | first setup-hosts | no-change run (median / min) | round trips per host "
          "| controller peak RSS |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['hosts']} | {r['build_infra_s']} s | {r['first_run_s']} s ({r['first_run_changes']} changes) | "
              f"{r['nochange_median_s']} s / {r['nochange_min_s']} s | {r['round_trips_per_host']} "
              f"({r['steps']} steps) | {r['controller_peak_rss_mib']} MiB |")


if __name__ == "__main__":
    main()
