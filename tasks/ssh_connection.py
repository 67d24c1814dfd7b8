"""ssh-connection: reach every host, record its host key on first contact, and learn its facts."""

from __future__ import annotations

from hive_nornir.engine.context import HostContext


def ssh_connection(ctx: HostContext) -> None:
    """Connecting records the host key (accept-new) in the stage's known_hosts; facts cost one round trip."""
    facts = ctx.facts
    ctx.outcome.data["os"] = facts.os_pretty or f"{facts.os_id} {facts.os_version}"
