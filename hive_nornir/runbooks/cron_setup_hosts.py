"""Cron-style runbook script: converge setup-hosts, keep a JSON report per run, stay silent unless it failed.

    */30 * * * * cd /srv/site && .venv/bin/python -m hive_nornir.runbooks.cron_setup_hosts --stage production
    0 3 * * * cd /srv/site && .venv/bin/python -m hive_nornir.runbooks.cron_setup_hosts -T base,users -l hive0

Nothing is printed when every host finished, so cron mails only when something is wrong: then stderr has one
`error:` line per failed or unreachable host, the report's path and the exit code. Each run writes
`<report-dir>/<phase>-<stage>-<UTC time>.json`, points `<phase>-<stage>-latest.json` at it and keeps the --keep
newest. No terminal, no colour, no prompts; a second cron run while this one works exits 5 (stage locked).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hive_nornir.api import Hive
from hive_nornir.engine.errors import BadInput
from hive_nornir.engine.lock import StageLocked
from hive_nornir.report.archive import DEFAULT_KEEP, archive_report
from hive_nornir.report.progress import Progress
from hive_nornir.report.run_report import EXIT_BAD_INPUT, EXIT_CODES, EXIT_LOCKED, EXIT_OK
from hive_nornir.site import SiteError


def main(argv: list[str] | None = None) -> int:
    """Run the phase, archive its report, print only what a failure needs (stderr), return the exit code."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--root", default=".")
    parser.add_argument("--stage", default="private")
    parser.add_argument("--phase", default="setup-hosts")
    parser.add_argument("-T", "--tags", default="", help="comma-separated roles/tags (default: the whole phase)")
    parser.add_argument("-l", "--limit", default="", help="comma-separated hosts (default: every host)")
    parser.add_argument("--report-dir", default=None, help="default: ROOT/.hive/STAGE/reports")
    parser.add_argument("--keep", type=int, default=DEFAULT_KEEP,
                        help=f"how many reports of this phase and stage to keep (default {DEFAULT_KEEP})")
    args = parser.parse_args(argv)
    if args.keep < 1:
        parser.error("--keep must be at least 1")
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
    path = archive_report(report, out_dir, args.keep)
    if report.exit_code != EXIT_OK:
        for line in report.failure_lines():
            print(line, file=sys.stderr)
        print(f"report: {path}", file=sys.stderr)
        print(f"exit {report.exit_code}: {EXIT_CODES.get(report.exit_code, '')}", file=sys.stderr)
    return report.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
