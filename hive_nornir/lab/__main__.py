"""`python -m hive_nornir.lab`: build the lab host image (used by .ci/run before the tests)."""

from __future__ import annotations

import argparse
import sys
import time

from hive_nornir.lab.build import HOST_TAG, LabImageError, default_base_image, ensure_image


def _log(msg: str) -> None:
    """Progress to stderr with a timestamp, because CI logs are read afterwards."""
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} {msg}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """Build the image if needed; exit 1 with the reason when it cannot be built."""
    p = argparse.ArgumentParser(prog="python -m hive_nornir.lab", description=__doc__)
    p.add_argument("--base-image", default=default_base_image(),
                   help="existing local base image (default: debootstrap hive-nornir-base:bookworm)")
    p.add_argument("--tag", default=HOST_TAG)
    a = p.parse_args(argv)
    try:
        tag = ensure_image(a.base_image, a.tag, log=_log)
    except LabImageError as e:
        _log(f"ERROR: {e}")
        return 1
    sys.stdout.write(tag + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
