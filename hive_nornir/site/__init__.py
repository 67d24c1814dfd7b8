"""Site definitions in hive-builder's format: load, validate, describe as JSON Schema."""

from .errors import SiteError, SiteIssue, UnknownStageError
from .loader import default_site_dir, find_site, load_site
from .model import Site, Stage, Subnet
from .rules import PROVIDERS, STAGE_NAMES, STAGE_PREFIX
from .schema import site_json_schema

__all__ = [
    "PROVIDERS",
    "STAGE_NAMES",
    "STAGE_PREFIX",
    "Site",
    "SiteError",
    "SiteIssue",
    "Stage",
    "Subnet",
    "UnknownStageError",
    "default_site_dir",
    "find_site",
    "load_site",
    "site_json_schema",
]
