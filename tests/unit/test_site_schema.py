"""The JSON Schema is generated from the validator's rule tables and agrees with the validator."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive_nornir.site import PROVIDERS, SiteError, load_site, site_json_schema
from hive_nornir.site.loader import default_site_dir
from hive_nornir.site.rules import STAGE_KEYS

PDNS = Path(__file__).parent / "fixtures" / "site_pdns" / "inventory" / "hive.yml"
_TYPES: dict[str, Any] = {"object": dict, "array": list, "string": str, "boolean": bool}


def _mini_valid(schema: dict[str, Any], value: Any, root: dict[str, Any]) -> bool:
    """The draft 2020-12 subset the generated schema uses (jsonschema is not a dependency)."""
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _mini_valid(target, value, root)
    kind = schema.get("type")
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return False
    if kind in _TYPES and not isinstance(value, _TYPES[kind]):
        return False
    if kind in ("string", "object", "array") and isinstance(value, bool):
        return False
    checks = [
        "enum" not in schema or value in schema["enum"],
        "const" not in schema or value == schema["const"],
        "minimum" not in schema or value >= schema["minimum"],
        "maximum" not in schema or value <= schema["maximum"],
        "maxLength" not in schema or len(value) <= schema["maxLength"],
        "pattern" not in schema or re.search(schema["pattern"], value) is not None,
        "not" not in schema or not _mini_valid(schema["not"], value, root),
        all(_mini_valid(s, value, root) for s in schema.get("allOf", [])),
        "anyOf" not in schema or any(_mini_valid(s, value, root) for s in schema["anyOf"]),
    ]
    if "if" in schema and _mini_valid(schema["if"], value, root):
        checks.append(_mini_valid(schema.get("then", {}), value, root))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        checks += [all(k in value for k in schema.get("required", [])),
                   len(value) >= schema.get("minProperties", 0)]
        for key, item in value.items():
            if "propertyNames" in schema:
                checks.append(_mini_valid(schema["propertyNames"], key, root))
            if key in props:
                checks.append(_mini_valid(props[key], item, root))
            elif extra is False:
                checks.append(False)
            elif isinstance(extra, dict):
                checks.append(_mini_valid(extra, item, root))
    if isinstance(value, list):
        checks += [len(value) >= schema.get("minItems", 0),
                   not schema.get("uniqueItems") or len({repr(v) for v in value}) == len(value)]
        checks += [_mini_valid(schema["items"], v, root) for v in value] if "items" in schema else []
    return all(checks)


def schema_valid(value: Any) -> bool:
    schema = site_json_schema()
    try:
        import jsonschema
    except ImportError:
        return _mini_valid(schema, value, schema)
    return bool(jsonschema.Draft202012Validator(schema).is_valid(value))


def test_schema_is_generated_from_the_rule_tables() -> None:
    schema = site_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    stage = schema["$defs"]["stage"]
    assert list(stage["properties"]) == [k.name for k in STAGE_KEYS]
    assert stage["required"] == ["provider", "cidr"]
    assert stage["properties"]["provider"]["enum"] == list(PROVIDERS)
    assert stage["additionalProperties"] is False
    restricted = {rule["then"]["not"]["required"][0] for rule in stage["allOf"]}
    assert restricted == {k.name for k in STAGE_KEYS if k.providers is not None}
    assert schema["properties"]["stages"]["propertyNames"] == {"enum": ["private", "staging", "production"]}


@pytest.mark.parametrize("path", [default_site_dir() / "hive.yml", PDNS], ids=["default", "pdns"])
def test_schema_accepts_valid_sites(path: Path) -> None:
    load_site(path)  # the validator accepts it ...
    assert schema_valid(yaml.safe_load(path.read_text()))  # ... and so does the schema


BASE: dict[str, Any] = {"plugin": "hive_inventory", "name": "pdns",
                        "stages": {"private": {"provider": "vagrant", "cidr": "10.0.0.0/24"}}}


@pytest.mark.parametrize("change", [
    {"region": "eu-west-1"},
    {"provider": "aws", "memory_size": 2048},
    {"provider": "aws", "kickstart_config": {"iso_src": "a", "iso_dest": "b"}},
    {"provider": "docker", "instance_type": "t3.large"},
    {"cidrr": "10.0.0.0/24"},
    {"number_of_hosts": 0},
    {"separate_repository": "False"},
    {"cidr": "10.0.0.0"},
    {"subnets": [{"name": "a"}]},
    {"custom_hostname": "Bad_Name"},
])
def test_schema_and_validator_agree_on_invalid_stages(tmp_path: Path, change: dict[str, Any]) -> None:
    """The schema describes what --strict accepts (unknown keys and quoted booleans are only warnings without)."""
    doc = {**BASE, "stages": {"private": {**BASE["stages"]["private"], **change}}}
    assert schema_valid(BASE)
    assert not schema_valid(doc)
    path = tmp_path / "hive.yml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SiteError):
        load_site(path, strict=True)


def test_schema_rejects_bad_stage_names_and_plugins() -> None:
    assert not schema_valid({**BASE, "stages": {"prod": BASE["stages"]["private"]}})
    assert not schema_valid({**BASE, "plugin": "hive_services"})
    assert not schema_valid({**BASE, "stages": {}})
