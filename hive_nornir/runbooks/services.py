"""hive-builder's service phases: build-volumes, build-networks, deploy-services (registered in pyproject.toml).

Each talks to the docker engines through the SDK over an SSH local forward to their TLS API (tasks/services/).
"""

from __future__ import annotations

from hive_nornir.engine.runbook import Runbook, Step
from hive_nornir.tasks.services.deploy import deploy_services, pull_images
from hive_nornir.tasks.services.networks import build_networks
from hive_nornir.tasks.services.volumes import build_volumes

BUILD_VOLUMES = Runbook(
    name="build-volumes",
    description="the docker volumes of the service definitions on every hive (DRBD and NFS planned only)",
    steps=(Step("build-volumes", build_volumes, groups=("hives",), tags=("build-volumes",)),),
)

BUILD_NETWORKS = Runbook(
    name="build-networks",
    description="the overlay networks of the service definitions on the swarm (from first_hive)",
    steps=(Step("build-networks", build_networks, groups=("first_hive",), tags=("build-networks",)),),
)

DEPLOY_SERVICES = Runbook(
    name="deploy-services",
    description="pull every service image on the hives, then create or update one swarm service per definition",
    steps=(
        Step("pull-images", pull_images, groups=("hives",), tags=("pull-images", "deploy-services")),
        Step("deploy-services", deploy_services, groups=("first_hive",), tags=("deploy-services",)),
    ),
)
