"""Errors a step raises to fail one host with a message an operator can act on."""

from __future__ import annotations


class StepFailed(Exception):
    """The step cannot finish on this host; the message says why."""


class CommandFailed(StepFailed):
    """A command on the host exited non-zero."""

    def __init__(self, what: str, exit_status: int, output: str) -> None:
        tail = "\n".join(output.strip().splitlines()[-6:])
        super().__init__(f"{what}: exit {exit_status}: {tail}" if tail else f"{what}: exit {exit_status}")
        self.exit_status = exit_status


class BadInput(Exception):
    """Input from the operator (flags, phase, tags, limit) is wrong; nothing on any host was touched."""
