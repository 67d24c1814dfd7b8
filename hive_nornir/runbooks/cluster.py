"""cluster and vip-failover: the cluster building blocks of a site (keepalived VIPs, LVM volumes, DRBD resources).

`python -m hive_nornir run cluster` applies what the site's hive_keepalived, hive_lvm and hive_drbd_resources say
(each step runs only on hosts that set its variable); `run vip-failover` is the opt-in failover test of every VIP
(it really moves them). Both are registered phases (pyproject.toml, group hive_nornir.phases).
"""

from __future__ import annotations

from typing import Any

from hive_nornir.engine.protocols import TaskContext
from hive_nornir.engine.runbook import Runbook, Step
from hive_nornir.tasks.cluster.keepalived import keepalived
from hive_nornir.tasks.cluster.vip import keepalived_vip, vip_failover

FAILOVER_VAR = "hive_vip_failover"  # {service, timeout, observer, instance}: the failover step's settings


def has(key: str) -> Any:
    """Step condition: the host (or its groups) sets `key`."""
    return lambda host: bool(host.get(key, None))


def failover_from_site(ctx: TaskContext) -> None:
    """The failover step with its settings from hive_vip_failover (service, timeout, observer, instance)."""
    spec = ctx.var(FAILOVER_VAR) or {}
    vip_failover(ctx, instance=spec.get("instance"), service=str(spec.get("service", "keepalived")),
                 timeout=float(spec.get("timeout", 30.0)), observer=spec.get("observer"))


KEEPALIVED_STEPS = (
    Step("keepalived", keepalived, tags=("keepalived", "vip"), when=has("hive_keepalived")),
    Step("keepalived-vip", keepalived_vip, tags=("keepalived", "vip"), when=has("hive_keepalived")),
)

RUNBOOK = Runbook(
    name="cluster",
    description="keepalived VIPs (validated config, reload, VIP on exactly one host), LVM volumes and DRBD resources "
                "from the site's hive_keepalived, hive_lvm and hive_drbd_resources",
    steps=KEEPALIVED_STEPS,
)

FAILOVER = Runbook(
    name="vip-failover",
    description="stop keepalived on each VIP's master, time the move, start it again (the old master stays BACKUP)",
    steps=(Step("vip-failover", failover_from_site, tags=("vip-failover",), when=has("hive_keepalived")),),
)
