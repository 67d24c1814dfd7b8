"""build-volumes (hives): the docker volumes of the stage's service definitions on every hive's engine.

`driver` volumes (local with driver_opts, or any installed plugin) are created with our labels, as hive-builder's
docker_volume. DRBD volumes are planned (resource, minor, port 7000+minor, thin LV size, file system) and reported
as not applicable where the host has no DRBD kernel module (/proc/drbd; the lab's containers share a kernel
without it), never half-made; NFS volumes need a provider's file service (EFS, Filestore) and are reported so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.services.model import Volume

from .engine import engine_client
from .spec import SPEC_LABEL
from .stage import destroying, is_ours, owner_labels, stage_services

DRBD_PORT_BASE = 7000
REMOVE_TIMEOUT_S = 120.0
SWARM_TASK_LABEL = "com.docker.swarm.task.id"


def volume_digest(volume: Volume) -> str:
    """sha256 of a driver volume's definition (driver and options)."""
    body = json.dumps([volume.name, volume.options], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def drbd_plan(volume: Volume) -> str:
    """What build-volumes would make for a DRBD volume (hive-builder's drbd-resource role), one line."""
    o = volume.options
    minor = int(o["device_id"])
    return (f"drbd resource {volume.name}: /dev/drbd{minor}, port {DRBD_PORT_BASE + minor}, thin LV "
            f"drbdvg/{volume.name} {o['size']} in drbdpool, {o['fstype']}, docker volume {volume.name} (local, "
            f"device /dev/drbd{minor})" + (f", diskless on {', '.join(o['diskless'])}" if o.get("diskless") else ""))


def build_volumes(ctx: TaskContext) -> None:
    """Create this hive's missing driver volumes; report DRBD and NFS volumes as planned, not applicable here."""
    import docker

    stage = stage_services(ctx)
    if not stage.volumes:
        ctx.outcome.data["volumes"] = "no volumes in the service definitions"
        return
    notes: list[str] = []
    drbd = [v for v in stage.volumes.values() if v.kind == "drbd"]
    if drbd:
        has_drbd = ctx.run("test -e /proc/drbd", check=False).exit_status == 0
        for v in drbd:
            why = "not applicable here: no DRBD kernel module (/proc/drbd)" if not has_drbd else \
                "not done yet by hive_nornir (issue 17)"
            notes.append(f"{drbd_plan(v)}: {why}")
    notes += [f"nfs volume {v.name}: not applicable here (needs the provider's file service)"
              for v in stage.volumes.values() if v.kind == "nfs"]
    if notes:
        ctx.outcome.data["volumes_not_built"] = notes
    wanted = [v for v in stage.volumes.values() if v.kind == "driver"]
    if not wanted:
        return
    client = engine_client(ctx)
    ours = owner_labels(ctx)
    found: dict[str, Any] = {}
    for v in wanted:
        with contextlib.suppress(docker.errors.NotFound):
            found[v.name] = client.volumes.get(v.name)
    problems: list[str] = []
    for v in wanted:
        have = found.get(v.name)
        if have is None:
            continue
        labels = have.attrs.get("Labels") or {}
        if not is_ours(labels, ours):
            problems.append(f"volume {v.name} exists on {ctx.name} but was not made by hive_nornir for "
                            f"{ours['hive_nornir.site']}/{ours['hive_nornir.stage']}: it is left alone")
        elif labels.get(SPEC_LABEL) != volume_digest(v):
            problems.append(f"volume {v.name} on {ctx.name} exists with another driver or options (a volume "
                            "cannot change in place): move its data and remove it, then run build-volumes again")
    if destroying(ctx):  # -D: our volumes go (docker refuses one a container still uses); a changed one too
        problems = [p for p in problems if "not made by hive_nornir" in p]
    if problems:
        raise StepFailed("; ".join(problems))
    if destroying(ctx):
        for name, have in found.items():
            if not ctx.check:
                remove_volume(client, have, ctx.name, float(ctx.var("hive_deploy_timeout") or REMOVE_TIMEOUT_S))
            ctx.changed(f"volume[{name}]", f"remove volume {name}")
        return
    for v in wanted:
        if v.name in found:
            continue
        driver = str(v.options["driver"])
        options = {str(k): str(x) for k, x in (v.options.get("driver_options") or {}).items()}
        if not ctx.check:
            client.volumes.create(v.name, driver=driver, driver_opts=options or None,
                                  labels={**ours, SPEC_LABEL: volume_digest(v)})
        ctx.changed(f"volume[{v.name}]", f"create volume {v.name} (driver {driver})")


def remove_volume(client: Any, volume: Any, host: str, timeout: float) -> None:
    """Remove a volume; while only swarm task containers still hold it (a service just removed by
    deploy-services -D, whose tasks stop asynchronously), retry until they are gone, bounded."""
    import docker

    deadline = time.monotonic() + timeout
    while True:
        try:
            volume.remove()
            return
        except docker.errors.APIError as e:
            users = client.containers.list(all=True, filters={"volume": volume.name})
            others = [c.name for c in users if SWARM_TASK_LABEL not in (c.labels or {})]
            if e.status_code != 409 or others or not users or time.monotonic() > deadline:
                used = f" (used by {', '.join(others or [c.name for c in users])})" if users else ""
                raise StepFailed(f"remove volume {volume.name} on {host}: {e.explanation or e}{used}") from e
        time.sleep(1.0)
