"""The docker SDK on a host's engine: its TLS API (2376, stage CA) reached through an SSH local forward.

The engine's port is never opened to anyone but the controller's loopback: the SDK talks to 127.0.0.1:<free
port>, which the host's own SSH session pipes to the engine's 127.0.0.1:2376 (hive-builder tunnels the socket the
same way). One client per host per run (kept in the run's shared values); the docker package is imported here,
lazily, so phases that never talk to an engine never import it.
"""

from __future__ import annotations

from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.pki_paths import controller_docker_client_dir
from hive_nornir.tasks.docker.docker_engine import DOCKER_API_PORT
from hive_nornir.transport.forward import local_forward

SHARED_KEY = "docker-engine:"  # + host name: the run's client of that host's engine
API_TIMEOUT_S = 120


def engine_client(ctx: TaskContext) -> Any:
    """This host's docker.DockerClient for the run (StepFailed when the engine or the client files are missing)."""
    key = SHARED_KEY + ctx.name
    with ctx.lock:
        found = ctx.shared.get(key)
    if found is not None and found[1].active:
        return found[0]
    context_dir = ctx.context_dir
    if context_dir is None or not (controller_docker_client_dir(context_dir) / "key.pem").exists():
        raise StepFailed("no controller docker client files (.hive/<stage>/docker-client/): run setup-hosts "
                         "(steps tls-certificate and docker-client) first")
    import docker  # lazily: the SDK only where an engine is used

    from hive_nornir.tasks.docker.docker_client import stage_docker_client

    forward = local_forward(ctx.session, "127.0.0.1", DOCKER_API_PORT, f"{ctx.name}:docker-api")
    base_url = f"tcp://127.0.0.1:{forward.port}"
    try:
        client = stage_docker_client(context_dir, base_url, version="auto", timeout=API_TIMEOUT_S)
    except docker.errors.DockerException as e:
        raise StepFailed(f"the docker engine API of {ctx.name} (port {DOCKER_API_PORT}, through SSH) does not "
                         f"answer: {e}; is the docker step of setup-hosts done?") from e
    with ctx.lock:
        ctx.shared[key] = (client, forward)
    return client
