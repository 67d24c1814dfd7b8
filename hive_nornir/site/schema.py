"""JSON Schema (draft 2020-12) of hive.yml, generated from the same rule tables the validator uses."""

from __future__ import annotations

from typing import Any

from .rules import PROVIDERS, STAGE_KEYS, STAGE_NAMES, TOP_KEYS, object_schema

SCHEMA_ID = "https://hive-nornir.invalid/schemas/hive.yml.json"


def _provider_rules() -> list[dict[str, Any]]:
    """One if/then per provider-restricted key: other providers must not carry it."""
    rules: list[dict[str, Any]] = []
    for spec in STAGE_KEYS:
        if spec.providers is None:
            continue
        refused = [p for p in PROVIDERS if p not in spec.providers]
        rules.append({
            "if": {"properties": {"provider": {"enum": refused}}, "required": ["provider"]},
            "then": {"not": {"required": [spec.name]}},
        })
    return rules


def site_json_schema() -> dict[str, Any]:
    """Schema for editors and external validators; the Python validator stays the authority."""
    top = object_schema(TOP_KEYS)
    top["properties"]["stages"] = {
        "type": "object",
        "minProperties": 1,
        "propertyNames": {"enum": list(STAGE_NAMES)},
        "additionalProperties": {"$ref": "#/$defs/stage"},
        "description": "private / staging / production stage definitions",
    }
    stage = object_schema(STAGE_KEYS)
    stage["allOf"] = _provider_rules()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "hive_nornir / hive-builder site definition (inventory/hive.yml)",
        **top,
        "$defs": {"stage": stage},
    }
