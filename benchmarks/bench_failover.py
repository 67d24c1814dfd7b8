"""Benchmark: keepalived VIP failover time in the docker lab, median of N failovers.

    flock /tmp/hn-lab.lock .venv/bin/python benchmarks/bench_failover.py [--repeat 5]

Builds a 2-host stage (site clusb, 10.171.0.0/24) with the real provider, applies the `cluster` phase (one VRRP
instance, advert_int 1, all BACKUP + nopreempt), then runs the `vip-failover` phase N times: each stops keepalived
on the current master and times the stop command to the VIP seen (`ip -o -4 addr`, polled every 50 ms over SSH) on
the other host; the old master comes back as BACKUP, so the next run fails over the other way. Destroys the stage.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lab"))

from conftest import start_lab, stop_lab

from hive_nornir.api import Hive
from hive_nornir.runbooks.cluster import FAILOVER, RUNBOOK

SITE, CIDR = "clusb", "10.171.0.0/24"
VARS = """hive_keepalived:
  instances:
    VI_BENCH:
      interface: eth0
      virtual_router_id: 62
      virtual_ipaddress: [10.171.0.200/24]
      hosts: [p-hive0.clusb, p-hive1.clusb]
hive_vip_failover:
  timeout: 20
"""


def main() -> None:
    """Build, apply, fail over N times, print and return the median."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        lab = start_lab(Path(tmp), SITE, CIDR, 2, separate=False, group_vars=VARS)
        try:
            hive = Hive(lab.root, stage="private")
            applied = hive.run(RUNBOOK)
            if applied.exit_code:
                raise SystemExit(applied.text())
            times = []
            for n in range(args.repeat):
                report = hive.run(FAILOVER)
                if report.exit_code:
                    raise SystemExit(report.text())
                [data] = [o.data["failover"]["VI_BENCH"] for o in report.outcomes if "failover" in o.data]
                times.append(float(data["seconds"]))
                print(f"failover {n + 1}: {data['from']} -> {data['to']} {data['seconds']:.3f} s")
            print(f"median of {len(times)}: {statistics.median(times):.3f} s (min {min(times):.3f} s, "
                  f"max {max(times):.3f} s)")
        finally:
            stop_lab(lab)


if __name__ == "__main__":
    main()
