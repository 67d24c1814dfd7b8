"""The run's service definitions, resolved for the stage once per run (auto published ports persisted)."""

from __future__ import annotations

from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import StageHost, TaskContext
from hive_nornir.services.model import ResolveError, StageServices

SITE_KEY = "site"  # ctx.shared: the run's Site (Hive.run puts it there)
RESOLVED_KEY = "services:resolved"
DESTROY_KEY = "destroy"  # ctx.shared: `run PHASE -D` (Hive.run(destroy=True)): remove what the phase made

OWNER_SITE = "hive_nornir.site"  # labels on every swarm service, network and volume these phases make
OWNER_STAGE = "hive_nornir.stage"


def site_of(ctx: TaskContext) -> Any:
    """The run's Site: from Hive.run, else loaded from the project the stage directory belongs to."""
    with ctx.lock:
        site = ctx.shared.get(SITE_KEY)
        if site is None:
            if ctx.context_dir is None:
                raise StepFailed("the service phases need the stage context directory (.hive/<stage>)")
            from hive_nornir.site import load_site
            from hive_nornir.site.project import find_project

            project = find_project(ctx.context_dir.parent.parent)
            site = ctx.shared[SITE_KEY] = load_site(project.site_file, root_dir=project.root)
    return site


def stage_services(ctx: TaskContext) -> StageServices:
    """Services, images, volumes and networks of this stage (empty when the project has no services file)."""
    site = site_of(ctx)
    stage = str(ctx.var("hive_stage") or "")
    with ctx.lock:
        found = ctx.shared.get(RESOLVED_KEY)
        if found is None:
            from hive_nornir.services.model import ServiceSet

            services = site.services if site.services is not None else ServiceSet()
            try:
                found = services.resolve(stage, root=site.root_dir, save=not ctx.check)
            except (ResolveError, ValueError) as e:
                raise StepFailed(f"service definitions: {e}") from e
            ctx.shared[RESOLVED_KEY] = found
    return found


def owner_labels(ctx: TaskContext) -> dict[str, str]:
    """What marks a resource as made by these phases for this site and stage (nothing else is ever touched)."""
    return {OWNER_SITE: str(ctx.var("hive_name") or ""), OWNER_STAGE: str(ctx.var("hive_stage") or "")}


def is_ours(labels: dict[str, str] | None, ours: dict[str, str]) -> bool:
    """A resource carrying our site and stage labels."""
    found = labels or {}
    return all(found.get(k) == v for k, v in ours.items())


def stage_servers(ctx: TaskContext) -> dict[str, StageHost]:
    """The stage's servers by name (hive-builder's hosts entries: every server -> hive_private_ip)."""
    return {name: h for name, h in ctx.stage_hosts().items() if "servers" in h.groups}


def repository_host(ctx: TaskContext) -> StageHost | None:
    """The stage's repository server (the registry and the syslog collector)."""
    return next((h for h in ctx.stage_hosts().values() if "repository" in h.groups), None)


def destroying(ctx: TaskContext) -> bool:
    """`-D`: the phase removes what it made (hive-builder's hive_destroy), never what it did not."""
    return bool(ctx.shared.get(DESTROY_KEY))
