"""Where paramiko's own log records go; apart from connect.py so the CLI sets it without importing paramiko."""

from __future__ import annotations

import logging

# paramiko's transport thread logs tracebacks (e.g. "Error reading SSH protocol banner") that we turn into
# readable TransportErrors; route them under our name with a NullHandler and no propagation so they never hit
# stderr unasked (the CLI's -v turns propagation back on: paramiko_logging(True)).
PARAMIKO_LOG = "hive_nornir.transport.paramiko"
logging.getLogger(PARAMIKO_LOG).addHandler(logging.NullHandler())
logging.getLogger(PARAMIKO_LOG).propagate = False


def paramiko_logging(enabled: bool) -> None:
    """Show paramiko's own log records (tracebacks included) through the root handlers, for -v debugging."""
    logging.getLogger(PARAMIKO_LOG).propagate = enabled
