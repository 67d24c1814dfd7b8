"""Cron-style runbook script: converge setup-hosts, keep a JSON report, exit with the documented code.

    */30 * * * * cd /srv/site && .venv/bin/python -m hive_nornir.runbooks.cron_setup_hosts --stage production
    0 3 * * * cd /srv/site && .venv/bin/python -m hive_nornir.runbooks.cron_setup_hosts -T base,users -l hive0

No terminal, no colour, no prompts; a second cron run while this one works exits 5 (stage locked).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hive_nornir.api import Hive
from hive_nornir.engine.errors import BadInput
from hive_nornir.engine.lock import StageLocked
from hive_nornir.report.progress import Progress
from hive_nornir.report.run_report import EXIT_BAD_INPUT, EXIT_LOCKED
from hive_nornir.site import SiteError


def main(argv: list[str] | None = None) -> int:
    """Run the phase, write `<report-dir>/<phase>-<stage>.json`, print the plain summary for cron mail."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".")
    parser.add_argument("--stage", default="private")
    parser.add_argument("--phase", default="setup-hosts")
    parser.add_argument("-T", "--tags", default="", help="comma-separated roles/tags (default: the whole phase)")
    parser.add_argument("-l", "--limit", default="", help="comma-separated hosts (default: every host)")
    parser.add_argument("--report-dir", default=None, help="default: ROOT/.hive/STAGE/reports")
    args = parser.parse_args(argv)
    tags = [t for t in args.tags.split(",") if t] or None
    limit = [h for h in args.limit.split(",") if h] or None
    try:
        hive = Hive(root=args.root, stage=args.stage)
        report = hive.run(args.phase, tags=tags, limit=limit,
                          progress=Progress(sys.stdout, colour=False, quiet=True))
    except (SiteError, BadInput) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StageLocked as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    out_dir = Path(args.report_dir) if args.report_dir else hive.context_dir / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{args.phase}-{args.stage}.json").write_text(report.to_json() + "\n")
    print(report.text())
    return report.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
