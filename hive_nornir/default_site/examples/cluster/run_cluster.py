"""The cluster phase from Python: apply, show the VIP's master, fail over once (`python run_cluster.py`)."""

import sys

from hive_nornir import Hive
from hive_nornir.runbooks.cluster import FAILOVER, RUNBOOK

hive = Hive(".")
report = hive.run(RUNBOOK, check="-C" in sys.argv)
print(report.text())  # noqa: T201 - a script prints its report
for outcome in report.outcomes:
    if "vip" in outcome.data:
        print("VIP master:", outcome.data["vip"])  # noqa: T201 - a script prints its report
if report.exit_code == 0 and "-C" not in sys.argv:
    moved = hive.run(FAILOVER)
    print(moved.text())  # noqa: T201 - a script prints its report
    sys.exit(moved.exit_code)
sys.exit(report.exit_code)
