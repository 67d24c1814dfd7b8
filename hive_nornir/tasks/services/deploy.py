"""deploy-services: pull every service's image on the hives, then one swarm service per definition from first_hive.

As hive-builder's deploy-services.yml: the image is the built one in the stage registry
(`<repository>:5000/image_<service>:latest`), pull_from on the pull_on stages, or the tag as written, remapped by
`.hive/<stage>/tag-mapping.json`; registry pulls log in as hive_docker_login_user with the stage password (over the
engine API, never argv). A service whose spec (hash label) and image are unchanged is left alone; a changed one is
updated in place; a new one created; then the step waits (bounded) until its tasks run and names the task error
when they do not. A service of that name that we did not make for this site and stage is refused, before any change.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.stage_secrets import stage_secret
from hive_nornir.tasks.repository.registry import DEFAULT_USER, PASSWORD_FILE

from .engine import engine_client
from .spec import DEFAULT_REGISTRY_PORT, DEFAULT_SYSLOG_PORT, SPEC_LABEL, DeployEnv, image_ref, service_spec
from .stage import destroying, is_ours, owner_labels, repository_host, stage_servers, stage_services

PULLED_KEY = "services:pulled:"  # + host: {image ref: image id} after the pull step
TAG_MAPPING = "tag-mapping.json"
CONVERGE_TIMEOUT_S = 120.0
POLL_S = 1.0


def registry_name(ctx: TaskContext) -> str:
    """hive-builder's hive_registry: `<repository inventory name>:<hive_registry_port>`."""
    repo = repository_host(ctx)
    port = int(ctx.var("hive_registry_port") or DEFAULT_REGISTRY_PORT)
    return f"{repo.name if repo is not None else 'repository'}:{port}"


def tag_mapping(ctx: TaskContext) -> dict[str, str]:
    """`.hive/<stage>/tag-mapping.json` (hive-builder's image remapping), empty when absent."""
    if ctx.context_dir is None:
        return {}
    path = ctx.context_dir / TAG_MAPPING
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise StepFailed(f"{path}: {e}") from e
    if not isinstance(data, dict):
        raise StepFailed(f"{path}: not a JSON object of image -> image")
    return {str(k): str(v) for k, v in data.items()}


def images_of(ctx: TaskContext) -> dict[str, str]:
    """Service name -> the image reference it runs."""
    stage = stage_services(ctx)
    registry, mapping = registry_name(ctx), tag_mapping(ctx)
    return {name: image_ref(s, stage.stage, registry, mapping) for name, s in stage.services.items()}


def auth_for(ctx: TaskContext, image: str) -> dict[str, str] | None:
    """Credentials for the image's registry: the stage registry's, or a matching hive_ext_repositories entry."""
    registry = registry_name(ctx)
    if image.startswith(registry + "/"):
        password = stage_secret(ctx.context_dir, PASSWORD_FILE, create=False)
        if password is None:
            raise StepFailed(f"no stage registry password ({PASSWORD_FILE}): run setup-hosts' registry step first")
        return {"username": str(ctx.var("hive_docker_login_user") or DEFAULT_USER), "password": password}
    for entry in ctx.var("hive_ext_repositories") or []:
        repo = str(entry.get("repository") or "")
        first = image.split("/", 1)[0] if "/" in image else ""
        on_hub = not repo and ("." not in first and ":" not in first and first != "localhost")
        if (repo and image.startswith(repo.rstrip("/") + "/")) or on_hub:
            return {"username": str(entry["login_user"]), "password": str(entry["password"])}
    return None


def split_ref(image: str) -> tuple[str, str]:
    """`repo:tag` -> (repo, tag), minding a registry's port (`host:5000/x` has no tag: latest)."""
    last = image.rsplit("/", 1)[-1]
    if ":" in last and "@" not in last:
        repo, _, tag = image.rpartition(":")
        return repo, tag
    return image, "latest"


def pull_images(ctx: TaskContext) -> None:
    """Pull each service image on this hive (a change only when the tag now names another image)."""
    import docker

    wanted = sorted(set(images_of(ctx).values()))
    if not wanted or destroying(ctx):  # -D pulls nothing, as hive-builder's `when: not hive_destroy`
        return
    client = engine_client(ctx)
    pulled: dict[str, str] = {}
    for image in wanted:
        before = _image_id(client, image)
        if ctx.check:
            if before is None:
                ctx.changed(f"image[{image}]", f"pull {image}")
            continue
        repo, tag = split_ref(image)
        try:
            client.images.pull(repo, tag=tag, auth_config=auth_for(ctx, image))
        except docker.errors.APIError as e:
            raise StepFailed(f"pull {image}: {e.explanation or e}") from e
        after = _image_id(client, image)
        if after is None:
            raise StepFailed(f"pull {image}: the engine has no such image afterwards")
        pulled[image] = after
        if after != before:
            ctx.changed(f"image[{image}]", f"pulled {image} ({after[7:19]})")
    with ctx.lock:
        ctx.shared[PULLED_KEY + ctx.name] = pulled


def _image_id(client: Any, image: str) -> str | None:
    import docker

    try:
        return str(client.images.get(image).id)
    except docker.errors.ImageNotFound:
        return None


def deploy_env(ctx: TaskContext, image: str, image_id: str | None) -> DeployEnv:
    """The stage-wide part of every spec (hosts entries, networks, syslog target, our labels)."""
    stage = stage_services(ctx)
    repo = repository_host(ctx)
    hosts = {name: str(h.get("hive_private_ip")) for name, h in stage_servers(ctx).items()
             if h.get("hive_private_ip")}
    return DeployEnv(image=image, hosts=hosts, networks=tuple(stage.networks),
                     repository=repo.name if repo is not None else "",
                     syslog_port=int(ctx.var("hive_syslog_port") or DEFAULT_SYSLOG_PORT),
                     tls_logging=bool(ctx.var("hive_tls_logging")),
                     home=str(ctx.var("hive_home_dir") or f"/home/{ctx.var('hive_admin') or 'admin'}"),
                     labels=owner_labels(ctx), image_id=image_id)


def deploy_services(ctx: TaskContext) -> None:
    """Create or update each service of the stage; nothing for an unchanged one; wait until changed ones run."""
    import docker

    stage = stage_services(ctx)
    if not stage.services:
        ctx.outcome.data["services"] = "no service definitions"
        return
    client = engine_client(ctx)
    if destroying(ctx):
        remove_services(ctx, client, list(stage.services))
        return
    images = images_of(ctx)
    with ctx.lock:
        pulled = dict(ctx.shared.get(PULLED_KEY + ctx.name) or {})
    ours = owner_labels(ctx)
    specs = {name: service_spec(s, deploy_env(ctx, images[name], pulled.get(images[name]) or
                                               _image_id(client, images[name])))
             for name, s in stage.services.items()}
    existing = {s.name: s for s in client.services.list() if s.name in specs}
    problems = [f"service {name} exists (id {svc.short_id}) but was not made by hive_nornir for "
                f"{ours['hive_nornir.site']}/{ours['hive_nornir.stage']}: it is left alone; remove or rename it"
                for name, svc in existing.items() if not is_ours(svc.attrs["Spec"].get("Labels"), ours)]
    if problems:
        raise StepFailed("; ".join(problems))
    auths = {a["username"]: a for a in (auth_for(ctx, i) for i in set(images.values())) if a}
    if auths and not ctx.check:
        registry = registry_name(ctx)
        for auth in auths.values():  # the SDK sends X-Registry-Auth with create/update, so nodes can pull too
            if auth["username"] == str(ctx.var("hive_docker_login_user") or DEFAULT_USER):
                client.api.login(auth["username"], auth["password"], registry=registry, reauth=True)
    touched: list[str] = []
    for name, spec in specs.items():
        svc = existing.get(name)
        if svc is not None and (svc.attrs["Spec"].get("Labels") or {}).get(SPEC_LABEL) == spec["Labels"][SPEC_LABEL]:
            continue
        verb = "create" if svc is None else "update"
        if not ctx.check:
            try:
                if svc is None:
                    client.api.create_service(spec["TaskTemplate"], name=name, labels=spec["Labels"],
                                              mode=spec["Mode"], endpoint_spec=spec["EndpointSpec"])
                else:
                    client.api.update_service(svc.id, svc.attrs["Version"]["Index"],
                                              task_template=spec["TaskTemplate"], name=name, labels=spec["Labels"],
                                              mode=spec["Mode"], endpoint_spec=spec["EndpointSpec"])
            except docker.errors.APIError as e:
                raise StepFailed(f"{verb} service {name}: {e.explanation or e}") from e
            touched.append(name)
        ctx.changed(f"service[{name}]", f"{verb} service {name} ({images[name]})")
    for name in touched:
        wait_running(client, name, float(ctx.var("hive_deploy_timeout") or CONVERGE_TIMEOUT_S))


def remove_services(ctx: TaskContext, client: Any, names: list[str]) -> None:
    """-D: remove the defined services that are ours; one that is not is refused (named) before any removal."""
    import docker

    ours = owner_labels(ctx)
    existing = {s.name: s for s in client.services.list() if s.name in names}
    foreign = [n for n, s in existing.items() if not is_ours(s.attrs["Spec"].get("Labels"), ours)]
    if foreign:
        raise StepFailed(f"not removing service(s) {', '.join(sorted(foreign))}: not made by hive_nornir for "
                         f"{ours['hive_nornir.site']}/{ours['hive_nornir.stage']}; nothing was removed")
    for name in names:
        svc = existing.get(name)
        if svc is None:
            continue
        if not ctx.check:
            try:
                svc.remove()
            except docker.errors.APIError as e:
                raise StepFailed(f"remove service {name}: {e.explanation or e}") from e
        ctx.changed(f"service[{name}]", f"remove service {name}")


def wait_running(client: Any, name: str, timeout: float) -> None:
    """Bounded wait until the service's tasks run (an update: until it completed); the tasks' errors otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        svc = client.services.get(name)
        current = svc.tasks(filters={"desired-state": "running"})
        running = [t for t in current if t["Status"]["State"] == "running"]
        mode = svc.attrs["Spec"].get("Mode", {})
        want = int(mode["Replicated"].get("Replicas", 1)) if "Replicated" in mode else max(len(current), 1)
        update = (svc.attrs.get("UpdateStatus") or {}).get("State")
        if len(running) >= want and len(running) == len(current) and update in (None, "completed"):
            return
        if update in ("paused", "rollback_completed", "rollback_paused"):
            raise StepFailed(f"service {name}: update {update}: {svc.attrs['UpdateStatus'].get('Message', '')}")
        if time.monotonic() > deadline:
            errors = sorted({t["Status"].get("Err") or t["Status"].get("Message", "") for t in svc.tasks()
                             if t["Status"]["State"] in ("failed", "rejected")} - {""})
            raise StepFailed(f"service {name} does not run after {timeout:.0f} s: {len(running)} of {want} tasks "
                             f"running" + (f"; task errors: {'; '.join(errors[:3])}" if errors else ""))
        time.sleep(POLL_S)
