"""JSON Schema (draft 2020-12) of a `plugin: hive_services` file, from the validator's own rule tables."""

from __future__ import annotations

from typing import Any

from hive_nornir.site.rules import object_schema

from .rules import DOCKER_NAME, FILE_KEYS, network_keys, service_keys

SCHEMA_ID = "https://hive-nornir.invalid/schemas/services.yml.json"


def services_json_schema() -> dict[str, Any]:
    """Schema for editors (the template's services_yml.json, complete); the Python validator stays the authority."""
    top = object_schema(FILE_KEYS)
    names = {"pattern": f"^(?:{DOCKER_NAME})$"}
    top["properties"]["services"] = {"type": "object", "propertyNames": names,
                                     "additionalProperties": {"$ref": "#/$defs/service"},
                                     "description": "service name -> service definition"}
    top["properties"]["networks"] = {"type": "object", "propertyNames": names,
                                     "additionalProperties": {"anyOf": [{"$ref": "#/$defs/network"},
                                                                        {"type": "null"}]},
                                     "description": "network name -> overlay network definition"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "hive_nornir / hive-builder service definitions (inventory/*.yml with plugin: hive_services)",
        **top,
        "$defs": {"service": object_schema(service_keys()), "network": object_schema(network_keys())},
    }
