"""The validated site as frozen dataclasses, so later layers never re-check or re-parse YAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SiteIssue, UnknownStageError
from .rules import DEFAULT_HOSTNAME, STAGE_PREFIX
from .validate import effective_count, separate

if TYPE_CHECKING:
    from hive_nornir.services.model import ServiceSet


@dataclass(frozen=True)
class Subnet:
    """One subnet of a stage, with hive-builder's default name filled in."""

    cidr: str
    name: str
    available_zone: str | int | None = None


@dataclass(frozen=True)
class Stage:
    """One stage (private/staging/production); `raw` keeps every key exactly as written."""

    name: str
    provider: str
    cidr: str
    number_of_hosts: int
    separate_repository: bool
    custom_hostname: str
    prefix: str
    subnets: tuple[Subnet, ...]
    ip_address_list: tuple[str, ...]
    internal_cidr: str | None
    internal_cidr_v6: str | None
    disk_size: int | None
    repository_disk_size: int | None
    mirrored_disk_size: int | None
    memory_size: int | None
    repository_memory_size: int | None
    cpus: int | None
    repository_cpus: int | None
    instance_type: str | None
    repository_instance_type: str | None
    region: str | None
    image_name: Any
    image: str | None
    shared_repository: dict[str, Any] | None
    root_password: str | None = field(repr=False)
    raw: dict[str, Any] = field(repr=False)

    def get(self, key: str, default: Any = None) -> Any:
        """Any stage key as written (for keys without a typed field)."""
        return self.raw.get(key, default)

    def host_name(self, idx: int, site_name: str) -> str:
        """hive-builder's server name rule: <prefix><custom_hostname><idx>.<name>."""
        return f"{self.prefix}{self.custom_hostname}{idx}.{site_name}"


@dataclass(frozen=True)
class Site:
    """A loaded site: hive.yml stages plus group_vars and host_vars beside it."""

    name: str
    path: Path
    root_dir: Path
    stages: dict[str, Stage]
    group_vars: dict[str, dict[str, Any]]
    host_vars: dict[str, dict[str, Any]]
    var_files: dict[str, Path] = field(default_factory=dict, repr=False)
    # what hive-builder accepts but does surprisingly (file:line:key each); load_site(strict=True) refuses them
    warnings: tuple[SiteIssue, ...] = field(default=(), repr=False)
    # the `plugin: hive_services` files beside the site file (hive_nornir.services), validated with it
    services: ServiceSet | None = field(default=None, repr=False)

    def stage(self, name: str) -> Stage:
        """A stage by name, with an error that lists the defined ones."""
        try:
            return self.stages[name]
        except KeyError:
            defined = ", ".join(self.stages) or "none"
            message = f"stage {name!r} is not defined in {self.path} (defined: {defined})"
            raise UnknownStageError(message) from None


def make_stage(name: str, raw: dict[str, Any]) -> Stage:
    """Build a Stage from an already validated mapping, applying hive-builder's defaults."""
    prefix = STAGE_PREFIX[name]
    subnets = tuple(
        Subnet(s["cidr"], s.get("name", f"{prefix}subnet{idx}"), s.get("available_zone"))
        for idx, s in enumerate(raw.get("subnets") or [])
    )
    shared = raw.get("shared_repository")
    return Stage(
        name=name,
        provider=raw["provider"],
        cidr=raw["cidr"],
        number_of_hosts=effective_count(raw),
        separate_repository=separate(raw),
        custom_hostname=raw.get("custom_hostname", DEFAULT_HOSTNAME),
        prefix=prefix,
        subnets=subnets,
        ip_address_list=tuple(raw.get("ip_address_list") or ()),
        internal_cidr=raw.get("internal_cidr"),
        internal_cidr_v6=raw.get("internal_cidr_v6"),
        disk_size=raw.get("disk_size"),
        repository_disk_size=raw.get("repository_disk_size"),
        mirrored_disk_size=raw.get("mirrored_disk_size"),
        memory_size=raw.get("memory_size"),
        repository_memory_size=raw.get("repository_memory_size"),
        cpus=raw.get("cpus"),
        repository_cpus=raw.get("repository_cpus"),
        instance_type=raw.get("instance_type"),
        repository_instance_type=raw.get("repository_instance_type"),
        region=raw.get("region"),
        image_name=raw.get("image_name"),
        image=raw.get("image"),
        shared_repository=dict(shared) if isinstance(shared, dict) else None,
        root_password=raw.get("root_password"),
        raw=raw,
    )
