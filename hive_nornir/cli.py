"""Command line: hive-builder's habits (`run PHASE -s STAGE -T tags -l limit -C`) on top of the API."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from hive_nornir.api import Hive, default_progress
from hive_nornir.engine.errors import BadInput
from hive_nornir.engine.lock import StageLocked
from hive_nornir.engine.runbook import Step
from hive_nornir.inventory import StateError
from hive_nornir.phases import phase_names
from hive_nornir.providers import NotOurs, ProviderError
from hive_nornir.report.run_report import (
    EXIT_BAD_INPUT,
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_LOCKED,
    EXIT_OK,
    RunReport,
)
from hive_nornir.site import SiteError
from hive_nornir.transport.paramiko_log import paramiko_logging

log = logging.getLogger("hive_nornir")


def _common() -> argparse.ArgumentParser:
    """Options every subcommand takes, before or after the subcommand name."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-r", "--root", default=argparse.SUPPRESS,
                   help="project root holding inventory/ and .hive/ (default: current directory)")
    p.add_argument("-i", "--site", default=argparse.SUPPRESS,
                   help="site file (default: the one ROOT/inventory/*.yml with plugin: hive_inventory; "
                        "the embedded lab site only when ROOT/inventory/ does not exist)")
    p.add_argument("-s", "--stage", default=argparse.SUPPRESS, choices=("private", "staging", "production"),
                   help="stage to act on (default: private)")
    p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                   help="debug log output, including paramiko's own log records and tracebacks")
    p.add_argument("--strict", action="store_true", default=argparse.SUPPRESS,
                   help="refuse what hive-builder accepts but does surprisingly (the site's warnings become errors)")
    return p


def build_parser() -> argparse.ArgumentParser:
    """The whole CLI; argparse exits 2 on a bad flag, which is our bad-input code too."""
    common = _common()
    parser = argparse.ArgumentParser(
        prog="python -m hive_nornir", parents=[common],
        description="Build and run a site of Linux servers from a hive-builder site definition.",
        epilog="exit codes: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items()),
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[common], help="run a phase on the stage's hosts")
    run.add_argument("phase", choices=phase_names())
    run.add_argument("-T", "--tags", help="comma-separated tags or step names to run (others are skipped)")
    run.add_argument("-l", "--limit", help="comma-separated hosts or groups (short names like p-hive0 work)")
    run.add_argument("-C", "--check", action="store_true", help="check mode: report what would change, change nothing")
    run.add_argument("--diff", action="store_true", help="show the diff of every change")
    run.add_argument("--resume", action="store_true", help="restart at the step the last run failed at")
    run.add_argument("-D", "--destroy", action="store_true",
                     help="build-infra: remove the stage's machines; deploy-services, build-volumes: remove the "
                          "services or volumes they made")
    run.add_argument("--adopt", action="store_true",
                     help="build-infra only: take over lab containers/network under this stage's names that another "
                          "checkout or an older hive_nornir made (refused without it)")
    run.add_argument("--rekey", metavar="HOSTS",
                     help="build-infra only: accept the changed host key of these comma-separated hosts "
                          "(any other changed key is refused)")
    run.add_argument("--json", metavar="FILE",
                     help="write a machine-readable report to FILE; with '-' stdout is only that JSON document "
                          "(progress and summary go to stderr)")
    run.add_argument("-q", "--quiet", action="store_true",
                     help="cron: print nothing on success; on failure only the error lines and the exit code "
                          "(stderr)")
    listing = run.add_argument_group("listing (as ansible-playbook's; -T/-l apply, no host is contacted)")
    listing.add_argument("--list-steps", action="store_true", help="the steps that would run, with groups and tags")
    listing.add_argument("--list-tags", action="store_true", help="the tags of the steps that would run")
    listing.add_argument("--list-hosts", action="store_true", help="the hosts that would be touched")

    inv = sub.add_parser("inventory", parents=[common], help="show the stage's Nornir inventory")
    inv.add_argument("--export", metavar="DIR", help="write SimpleInventory files (hosts/groups/defaults.yaml)")
    inv.add_argument("--json", action="store_true",
                     help="print every group's hosts and every host's variables as `ansible-inventory --list` does "
                          "(secrets masked)")
    inv.add_argument("--host", metavar="HOST",
                     help="print one host's variables as JSON, as `ansible-inventory --host` does (secrets masked)")

    schema = sub.add_parser("schema", parents=[common], help="print the JSON Schema of the site format")
    schema.add_argument("--services", action="store_true",
                        help="the schema of a services file (plugin: hive_services) instead")
    sub.add_parser("exit-codes", parents=[common], help="list the exit codes and what they mean")
    facts = sub.add_parser("facts", parents=[common], help="gather and print host facts (a table; --json)")
    facts.add_argument("-l", "--limit", help="comma-separated hosts or groups")
    facts.add_argument("--json", action="store_true", help="one JSON object: every host's facts by host name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the documented exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error on stderr
        if exc.code == EXIT_BAD_INPUT:
            phase = argv[argv.index("run") + 1] if "run" in argv[:-1] else ""
            _error_json(_json_target(argv), phase, "", False, EXIT_BAD_INPUT, "bad command line (see stderr)")
        raise
    verbose = bool(getattr(args, "verbose", 0))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    paramiko_logging(verbose)
    # providers' probes use paramiko's default logger: its tracebacks also wait for -v
    logging.getLogger("paramiko").propagate = verbose
    # site warnings are printed once each as `warning: FILE:LINE: KEY: ...` by _hive(), not by the log handler
    site_log = logging.getLogger("hive_nornir.site")
    site_log.propagate = False
    if not site_log.handlers:
        site_log.addHandler(logging.NullHandler())  # else logging's last-resort handler prints them again
    code, message = EXIT_INTERNAL, ""
    try:
        return _dispatch(args)
    except SiteError as exc:
        code, message = EXIT_BAD_INPUT, f"invalid site definition\n{exc}"
    except (BadInput, StateError) as exc:
        code, message = EXIT_BAD_INPUT, str(exc)
    except StageLocked as exc:
        code, message = EXIT_LOCKED, str(exc)
    except NotOurs as exc:
        code, message = EXIT_BAD_INPUT, f"build-infra: {exc}"
    except ProviderError as exc:
        code, message = EXIT_FAILED, f"build-infra: {exc}"
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:
        log.exception("internal error")
        return EXIT_INTERNAL
    print(f"error: {message}", file=sys.stderr)
    if args.command == "run":
        _error_json(args.json, args.phase, getattr(args, "stage", "private"), args.check, code, message)
    return code


def _json_target(argv: Sequence[str]) -> str | None:
    """Where --json points, read from raw argv when argparse refused the rest of the line."""
    for i, arg in enumerate(argv):
        if arg == "--json" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--json="):
            return arg.split("=", 1)[1]
    return None


def _error_json(target: str | None, phase: str, stage: str, check: bool, code: int, message: str) -> None:
    """A run that ended before any host was touched still owes --json its document, naming the error."""
    if not target:
        return
    report = RunReport(phase=phase, stage=stage, check=check, error=message, error_exit=code)
    _write_json(target, report)


def _write_json(target: str, report: RunReport) -> None:
    """`-` is stdout (and then nothing else is printed there); anything else is a file."""
    if target == "-":
        sys.stdout.write(report.to_json() + "\n")
        sys.stdout.flush()
    else:
        Path(target).write_text(report.to_json() + "\n")


def _hive(args: argparse.Namespace) -> Hive:
    hive = Hive(root=getattr(args, "root", "."), stage=getattr(args, "stage", "private"),
                site_file=getattr(args, "site", None), strict=getattr(args, "strict", False))
    for warning in hive.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    return hive


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "schema":
        from hive_nornir.services.schema import services_json_schema
        from hive_nornir.site import site_json_schema

        print(json.dumps(services_json_schema() if args.services else site_json_schema(), indent=2))
        return EXIT_OK
    if args.command == "exit-codes":
        for code, meaning in EXIT_CODES.items():
            print(f"{code}  {meaning}")
        return EXIT_OK
    hive = _hive(args)
    if args.command == "inventory":
        return _inventory(hive, args)
    if args.command == "facts":
        return _facts(hive, args)
    return _run(hive, args)


def _inventory(hive: Hive, args: argparse.Namespace) -> int:
    from hive_nornir.inventory import ansible_host_vars, ansible_list, export_simple_inventory, inventory_rows

    inventory = hive.inventory()
    if args.export:
        export_simple_inventory(inventory, Path(args.export))
        print(f"wrote {args.export}/hosts.yaml, groups.yaml, defaults.yaml")
        return EXIT_OK
    if args.host:
        hosts = inventory.hosts
        name = args.host if args.host in hosts else {n.split(".")[0]: n for n in hosts}.get(args.host)
        if name is None:
            raise BadInput(f"--host: no host {args.host!r} in stage {hive.stage}; hosts: {', '.join(hosts)}")
        print(json.dumps(ansible_host_vars(hosts[name]), indent=2, sort_keys=True, default=str))
        return EXIT_OK
    if args.json:
        print(json.dumps(ansible_list(inventory), indent=2, default=str))
        return EXIT_OK
    rows = inventory_rows(inventory)
    if not rows:
        print("no hosts")
        return EXIT_OK
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
    return EXIT_OK


FACT_COLUMNS = ("os_pretty", "os_family", "pkg_manager", "init", "kernel", "arch", "openssh", "selinux",
                "addresses", "block_devices")


def _facts(hive: Hive, args: argparse.Namespace) -> int:
    """Facts of the selected hosts: a table for people (rich on a terminal), one JSON object with --json."""
    found, report = hive.gather_facts(limit=args.limit)
    if args.json:
        print(json.dumps({name: facts.to_dict() for name, facts in found.items()}, indent=2, sort_keys=True))
    else:
        header = ("host", *FACT_COLUMNS)
        rows = [(name, *(_cell(getattr(facts, c)) for c in FACT_COLUMNS)) for name, facts in found.items()]
        if sys.stdout.isatty():
            from rich.console import Console
            from rich.table import Table

            table = Table(*header, title=f"facts, stage {hive.stage}")
            for row in rows:
                table.add_row(*row)
            Console().print(table)
        else:
            _columns([header, *rows])
    _host_errors(report)
    return report.exit_code if report.exit_code in EXIT_CODES else EXIT_FAILED


def _cell(value: object) -> str:
    """A fact as one table cell: lists space-separated, nothing as '-'."""
    text = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return text or "-"


def _host_errors(report: RunReport) -> None:
    """One stderr line per failed or unreachable host: cron mail and terminals read it."""
    for line in report.failure_lines():
        print(line, file=sys.stderr)

DESTROY_PHASES = ("build-infra", "deploy-services", "build-volumes")  # hive-builder's -D


def _run(hive: Hive, args: argparse.Namespace) -> int:
    for flag, given in (("--adopt", args.adopt), ("--rekey", args.rekey)):
        if given and args.phase != "build-infra":
            raise BadInput(f"{flag} only applies to build-infra")
    if args.destroy and args.phase not in DESTROY_PHASES:
        raise BadInput(f"-D/--destroy only applies to {', '.join(DESTROY_PHASES)}")
    rekey = [h.strip() for h in args.rekey.split(",") if h.strip()] if args.rekey is not None else []
    if args.rekey is not None and not rekey:
        raise BadInput("--rekey needs at least one host name")
    # `-T ''` / `-T ,` is an empty list (bad input), not None (every step)
    tags = [t.strip() for t in args.tags.split(",") if t.strip()] if args.tags is not None else None
    if args.list_steps or args.list_tags or args.list_hosts:
        return _list(hive, args, tags)
    human = sys.stderr if args.json == "-" else sys.stdout  # `--json -`: stdout is the JSON document only
    progress = default_progress(stream=human, show_diff=args.diff, full=bool(getattr(args, "verbose", 0)))
    progress.quiet = args.quiet
    if args.phase == "build-infra":
        from hive_nornir.infra import build_infra

        report: RunReport = build_infra(hive, destroy=args.destroy, check=args.check, progress=progress,
                                        adopt=args.adopt, rekey=rekey)
    else:
        report = hive.run(args.phase, tags=tags, limit=args.limit, check=args.check, diff=args.diff,
                          resume=args.resume, progress=progress, destroy=args.destroy)
    if not args.quiet:  # -q (cron): silence on success, so a mail means something went wrong
        print(report.text(), file=human, flush=True)
    _host_errors(report)
    if args.quiet and report.exit_code != EXIT_OK:
        print(f"exit {report.exit_code}: {EXIT_CODES.get(report.exit_code, '')}", file=sys.stderr)
    if args.json:
        _write_json(args.json, report)
    return report.exit_code if report.exit_code in EXIT_CODES else EXIT_FAILED


def _list(hive: Hive, args: argparse.Namespace, tags: list[str] | None) -> int:
    """What the run would do, worked out from the inventory alone: no lock, no state, no connection."""
    if args.phase == "build-infra":
        provider = hive.site.stages[hive.stage].provider
        print(f"phase build-infra, stage {hive.stage}: provider {provider} runs on the controller (no steps, no tags)")
        hosts = hive.hosts()
    else:
        selection = hive.select(args.phase, tags=tags, limit=args.limit)
        print(f"phase {selection.runbook.name}, stage {hive.stage}")
        hosts = selection.hosts
        if args.list_steps:
            print(f"  steps ({len(selection.steps)}):")
            _columns([(step.name, _where(step), f"TAGS: [{', '.join(step.tags)}]", _count(len(on)))
                      for step, on in selection.steps], indent="    ")
        if args.list_tags:
            print(f"  TAGS: [{', '.join(selection.tags)}]")
    if args.list_hosts:
        print(f"  hosts ({len(hosts)}):")
        for name in hosts:
            print(f"    {name}")
    return EXIT_OK


def _where(step: Step) -> str:
    """A step's host selection as the runbook writes it: groups, and the condition's name if it has one."""
    groups = ",".join(step.groups)
    if step.when is None:
        return groups
    name = getattr(step.when, "__name__", "")
    return f"{groups} (if {name})" if name and not name.startswith("<") else f"{groups} (conditional)"


def _count(n: int) -> str:
    return "1 host" if n == 1 else f"{n} hosts"


def _columns(rows: Sequence[Sequence[str]], indent: str = "") -> None:
    """Aligned plain columns: readable on a terminal, and still one record per line for grep and cron mail."""
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print((indent + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True))).rstrip())
