"""hive-builder's service definitions (`plugin: hive_services` files): load, validate, resolve per stage."""

from .loader import find_service_files, load_service_files, load_services
from .model import ImageBuild, NetworkDef, Port, Service, ServiceDef, ServiceSet, StageServices, Volume

__all__ = [
    "ImageBuild",
    "NetworkDef",
    "Port",
    "Service",
    "ServiceDef",
    "ServiceSet",
    "StageServices",
    "Volume",
    "find_service_files",
    "load_service_files",
    "load_services",
]
