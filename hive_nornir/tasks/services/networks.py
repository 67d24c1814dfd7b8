"""build-networks (first_hive): the stage's overlay networks, as hive-builder's build-networks.yml makes them.

driver overlay, attachable (hive_network_attachable, default true), the definition's driver_opts and ipam; for
hive_default_network without an ipam config, internal_cidr's first quarter (172.31.252.0/22 -> 172.31.252.0/24).
A network is immutable in docker: one of ours whose definition changed is refused with what differs (remove it
once no service uses it); a network of that name not made by us for this stage is never touched.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.netslice import slice_internal_cidr
from hive_nornir.services.model import NetworkDef
from hive_nornir.services.rules import DEFAULT_NETWORK

from .engine import engine_client
from .spec import SPEC_LABEL
from .stage import is_ours, owner_labels, stage_services


@dataclass(frozen=True)
class NetworkPlan:
    """What `docker network create` gets for one network (SDK keywords), and its hash."""

    name: str
    attachable: bool
    options: dict[str, str]
    ipam_driver: str | None
    ipam_config: tuple[dict[str, Any], ...]
    ipam_options: dict[str, str]

    @property
    def digest(self) -> str:
        """sha256 of the definition: the label that says whether the network is still what we asked for."""
        body = json.dumps([self.name, self.attachable, self.options, self.ipam_driver, list(self.ipam_config),
                           self.ipam_options], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:32]

    def sdk_ipam(self) -> Any:
        """docker.types.IPAMConfig, or None for docker's own addresses."""
        if self.ipam_driver is None and not self.ipam_config and not self.ipam_options:
            return None
        import docker

        pools = [docker.types.IPAMPool(subnet=c.get("subnet"), gateway=c.get("gateway"), iprange=c.get("iprange"),
                                       aux_addresses=c.get("aux_addresses")) for c in self.ipam_config]
        return docker.types.IPAMConfig(driver=self.ipam_driver or "default", pool_configs=pools,
                                       options=self.ipam_options or None)


def network_plan(network: NetworkDef, internal_cidr: str | None, attachable: bool = True) -> NetworkPlan:
    """hive-builder's docker_network arguments for one definition."""
    ipam = network.raw.get("ipam") or {}
    config = tuple(dict(c) for c in ipam.get("config") or ())
    if not config and network.name == DEFAULT_NETWORK and internal_cidr:
        subnet = slice_internal_cidr(internal_cidr).hive_default_network
        config = ({"subnet": subnet},) if subnet else ()
    return NetworkPlan(
        name=network.name, attachable=attachable,
        options={str(k): str(v) for k, v in (network.raw.get("driver_opts") or {}).items()},
        ipam_driver=str(ipam["driver"]) if ipam.get("driver") else None, ipam_config=config,
        ipam_options={str(k): str(v) for k, v in (ipam.get("options") or {}).items()})


def build_networks(ctx: TaskContext) -> None:
    """Create the stage's missing overlay networks on the swarm; refuse before any change what is not ours."""
    stage = stage_services(ctx)
    if not stage.networks:
        ctx.outcome.data["networks"] = "no service definitions"
        return
    attachable = ctx.var("hive_network_attachable")
    plans = [network_plan(n, ctx.var("hive_internal_cidr"), True if attachable is None else bool(attachable))
             for n in stage.networks.values()]
    client = engine_client(ctx)
    ours = owner_labels(ctx)
    found = {n.name: n for n in client.networks.list(names=[p.name for p in plans])}
    problems: list[str] = []
    todo: list[NetworkPlan] = []
    for plan in plans:
        net = found.get(plan.name)
        if net is None:
            todo.append(plan)
            continue
        labels = net.attrs.get("Labels") or {}
        if not is_ours(labels, ours):
            problems.append(f"network {plan.name} exists (id {net.short_id}, driver {net.attrs.get('Driver')}) but "
                            f"was not made by hive_nornir for {ours['hive_nornir.site']}/{ours['hive_nornir.stage']}"
                            ": remove or rename it; it is left alone")
        elif labels.get(SPEC_LABEL) != plan.digest:
            problems.append(f"network {plan.name} exists with another definition (a network cannot change in "
                            "place): remove it once no service uses it, then run build-networks again")
    if problems:
        raise StepFailed("; ".join(problems))
    for plan in todo:
        what = f"create overlay network {plan.name}" + (
            f" ({', '.join(str(c.get('subnet')) for c in plan.ipam_config)})" if plan.ipam_config else "")
        if not ctx.check:
            client.networks.create(plan.name, driver="overlay", scope="swarm", attachable=plan.attachable,
                                   options=plan.options or None, ipam=plan.sdk_ipam(),
                                   labels={**ours, SPEC_LABEL: plan.digest}, check_duplicate=True)
        ctx.changed(f"network[{plan.name}]", what)
