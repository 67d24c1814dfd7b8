"""Service definition errors name file, line and key path, as site errors do; one case per key rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_site_schema import _mini_valid

from hive_nornir.cli import main
from hive_nornir.services import load_service_files
from hive_nornir.services.rules import FILE_KEYS, service_keys
from hive_nornir.services.schema import services_json_schema
from hive_nornir.site import SiteError, load_site

HEAD = "plugin: hive_services\nservices:\n  web:\n    image: x:1\n"  # the service's keys start on line 4

# (key lines added under services.web, the key path of the error, words of the problem)
ERRORS: dict[str, tuple[str, str, str]] = {
    "unknown-key": ("    imagee: y\n", "services.web.imagee", "unknown key in service (did you mean 'image'?)"),
    "available-on-stage": ("    available_on: [prod]\n", "services.web.available_on[0]", "'prod' is not allowed"),
    "command-kind": ("    command: {a: 1}\n", "services.web.command", "has the wrong type"),
    "entrypoint-kind": ("    entrypoint: 3\n", "services.web.entrypoint", "has the wrong type"),
    "environment-null": ("    environment: {A: }\n", "services.web.environment.A", "is not a string, number"),
    "environment-list": ("    environment: [A=1]\n", "services.web.environment", "is not a mapping"),
    "port-int": ("    ports: [80]\n", "services.web.ports[0]", "is not a port string or mapping"),
    "port-range": ("    ports: ['80:70000']\n", "services.web.ports[0]", "has a port out of range"),
    "port-protocol": ("    ports: ['80/icmp']\n", "services.web.ports[0]", "is not a port definition"),
    "port-long-protocol": ("    ports: [{target_port: 80}]\n", "services.web.ports[0]",
                           "missing required key 'protocol'"),
    "port-mode": ("    ports: [{target_port: 80, protocol: tcp, mode: mesh}]\n", "services.web.ports[0].mode",
                  "'mesh' is not allowed"),
    "volume-short": ("    volumes: [/a:/b]\n", "services.web.volumes[0]", "short syntax"),
    "volume-target": ("    volumes: [{source: a}]\n", "services.web.volumes[0]", "missing required key 'target'"),
    "volume-type": ("    volumes: [{source: a, target: /a, type: nfs}]\n", "services.web.volumes[0].type",
                    "'nfs' is not allowed"),
    "volume-drbd-bind": ("    volumes: [{source: a, target: /a, drbd: {fstype: xfs, size: 1G}}]\n",
                         "services.web.volumes[0].type", "must be volume for a drbd volume"),
    "volume-two-kinds": ("    volumes: [{source: a, target: /a, type: volume, nfs: , driver: local}]\n",
                         "services.web.volumes[0].driver", "is given together with nfs"),
    "drbd-fstype": ("    volumes: [{source: a, target: /a, type: volume, drbd: {fstype: btrfs, size: 1G}}]\n",
                    "services.web.volumes[0].drbd.fstype", "'btrfs' is not allowed"),
    "drbd-size": ("    volumes: [{source: a, target: /a, type: volume, drbd: {fstype: xfs, size: big}}]\n",
                  "services.web.volumes[0].drbd.size", "has an invalid format"),
    "drbd-no-size": ("    volumes: [{source: a, target: /a, type: volume, drbd: {fstype: xfs}}]\n",
                     "services.web.volumes[0].drbd", "missing required key 'size'"),
    "drbd-minor": ("    volumes: [{source: a, target: /a, type: volume, drbd: {fstype: xfs, size: 1G, "
                   "device_id: 300}}]\n", "services.web.volumes[0].drbd.device_id", "is out of range"),
    "mode": ("    mode: global-ish\n", "services.web.mode", "is not allowed"),
    "replicas": ("    replicas: two\n", "services.web.replicas", "is not an integer"),
    "endpoint-mode": ("    endpoint_mode: VIP\n", "services.web.endpoint_mode", "'VIP' is not allowed"),
    "placement": ("    placement: {constraint: [a]}\n", "services.web.placement.constraint",
                  "unknown key in placement (did you mean 'constraints'?)"),
    "labels-key": ("    labels: {1: a}\n", "services.web.labels[1]", "is not a string"),
    "logging": ("    logging: {driver: syslog, opts: {}}\n", "services.web.logging.opts", "unknown key in logging"),
    "dns": ("    dns: [1]\n", "services.web.dns", "has the wrong type"),
    "hosts": ("    hosts: [a]\n", "services.web.hosts", "is not a mapping"),
    "user": ("    user: 0\n", "services.web.user", "is not a string"),
    "working-dir": ("    working_dir: [a]\n", "services.web.working_dir", "is not a string"),
    "stop-grace-period": ("    stop_grace_period: 10\n", "services.web.stop_grace_period", "is not a string"),
    "restart-config": ("    restart_config: {condition: always}\n", "services.web.restart_config.condition",
                       "'always' is not allowed"),
    "healthcheck": ("    healthcheck: {interval: soon}\n", "services.web.healthcheck.interval",
                    "has an invalid format"),
    "cap-add": ("    cap_add: ['NET ADMIN']\n", "services.web.cap_add[0]", "has an invalid format"),
    "cap-drop": ("    cap_drop: NET_ADMIN\n", "services.web.cap_drop", "is not a list"),
    "sysctls": ("    sysctls: {net.core.somaxconn: [1]}\n", "services.web.sysctls.net.core.somaxconn",
                "is not a string, number"),
    "cpu-limit": ("    cpu_limit: 0\n", "services.web.cpu_limit", "is out of range"),
    "mem-limit": ("    mem_limit: lots\n", "services.web.mem_limit", "has the wrong type"),
    "networks": ("    networks: [{aliases: [a]}]\n", "services.web.networks[0]", "has the wrong type"),
    "standalone": ("    standalone: 'yes'\n", "services.web.standalone", "is not a boolean"),
    "initialize-roles": ("    initialize_roles: role\n", "services.web.initialize_roles", "is not a list"),
    "backup-name": ("    backup_scripts: [{directory: /a}]\n", "services.web.backup_scripts[0]",
                    "missing required key 'name'"),
    "backup-days": ("    backup_scripts: [{name: a, directory: /a, cleanup_days_before: -1}]\n",
                    "services.web.backup_scripts[0].cleanup_days_before", "is out of range"),
    "monitor-error": ("    monitor_error: 'Error'\n", "services.web.monitor_error", "is not a list"),
    "ignore-error": ("    monitor_error: [a]\n    ignore_error: [1]\n", "services.web.ignore_error[0]",
                     "is not a string"),
}

IMAGE_ERRORS: dict[str, tuple[str, str, str]] = {
    "image-from": ("{roles: [r]}", "services.web.image", "has the wrong type"),
    "image-kind": ("[a]", "services.web.image", "has the wrong type"),
}


def _load(tmp_path: Path, text: str) -> list[Any]:
    path = tmp_path / "inventory" / "services.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return load_service_files([path])[1]


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_each_key_error_names_file_line_and_key(case: str, tmp_path: Path) -> None:
    lines, key, words = ERRORS[case]
    issues = _load(tmp_path, HEAD + lines)
    errors = [i for i in issues if not i.warning]
    assert len(errors) >= 1, issues
    wanted = [e for e in errors if e.key == key]
    assert wanted, f"no error at {key}: {[str(e) for e in errors]}"
    text = str(wanted[0])
    assert text.startswith(f"{tmp_path / 'inventory' / 'services.yml'}:{5 + lines.count(chr(10)) - 1}: {key}: ")
    assert words in text


@pytest.mark.parametrize("case", sorted(IMAGE_ERRORS))
def test_image_errors(case: str, tmp_path: Path) -> None:
    value, key, words = IMAGE_ERRORS[case]
    errors = [i for i in _load(tmp_path, HEAD.replace("x:1", value)) if not i.warning]
    assert [e.key for e in errors] == [key] and words in str(errors[0]) and errors[0].line == 4


def test_every_service_key_has_a_case() -> None:
    covered = {key.split(".")[2].split("[")[0] for key, _w in ((v[1], v[2]) for v in ERRORS.values())}
    assert (covered - {"imagee"}) | {"image"} == {k.name for k in service_keys()}


WARNINGS = {
    "reserved-prefix": ("  hive-web:\n    image: x\n", "services.hive-web", "hive- which hive-builder reserves"),
    "symbol-in-name": ("  web_1:\n    image: x\n", "services.web_1", "holds a symbol other than '-'"),
    "jinja": ("  web:\n    image: x\n    environment: {P: '{{ db_password }}'}\n", "services.web.environment.P",
              "does not render"),
    "duplicate-port": ("  a: {image: x, ports: ['80:80']}\n  b: {image: x, ports: ['80:81']}\n",
                       "services.b.ports[0]", "which service a publishes too"),
    "unknown-network": ("  web: {image: x, networks: [front]}\n", "services.web.networks[0]",
                        "is not defined in any services file"),
    "ignore-without-monitor": ("  web: {image: x, ignore_error: [a]}\n", "services.web.ignore_error",
                               "only used with monitor_error"),
}


@pytest.mark.parametrize("case", sorted(WARNINGS))
def test_what_hive_builder_accepts_but_advises_against_warns(case: str, tmp_path: Path) -> None:
    body, key, words = WARNINGS[case]
    issues = _load(tmp_path, "plugin: hive_services\nservices:\n" + body)
    assert all(i.warning for i in issues), [str(i) for i in issues]
    assert any(i.key == key and words.replace("hive- ", "'hive-', ") in str(i) for i in issues), \
        [str(i) for i in issues]


def test_bad_service_file_stops_the_site_load_with_every_error(tmp_path: Path) -> None:
    inv = tmp_path / "inventory"
    inv.mkdir()
    (inv / "hive.yml").write_text("plugin: hive_inventory\nname: svc\nstages:\n  private:\n    provider: docker\n"
                                  "    cidr: 10.190.0.0/24\n")
    (inv / "web.yml").write_text(HEAD + "    replicas: two\n    mode: both\n")
    with pytest.raises(SiteError) as raised:
        load_site(inv / "hive.yml")
    assert [(i.file.name, i.line, i.key) for i in raised.value.issues] == [
        ("web.yml", 5, "services.web.replicas"), ("web.yml", 6, "services.web.mode")]
    (inv / "web.yml").write_text("plugin: hive_services\nservices:\n  hive-web: {image: x}\n")
    assert [w.key for w in load_site(inv / "hive.yml").warnings] == ["services.hive-web"]
    with pytest.raises(SiteError, match="refused by --strict"):
        load_site(inv / "hive.yml", strict=True)


def test_hostile_yaml_is_refused_with_the_sites_limits(tmp_path: Path) -> None:
    bomb = "plugin: hive_services\na: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdef", "bcdefg", strict=True))
    issues = _load(tmp_path, bomb + "services: {}\n")
    assert any("expands through aliases" in str(i) for i in issues)


PDNS_SERVICES = Path(__file__).parent / "fixtures" / "services_pdns" / "inventory"


def test_hive_builders_pdns_example_loads_without_error() -> None:
    """examples/pdns/inventory/powerdns.yml, verbatim: no error; its Jinja values are the only warnings."""
    site = load_site(PDNS_SERVICES / "hive.yml")
    assert site.services is not None
    assert [s.name for s in site.services.services] == ["powerdns", "pdnsdb", "pdnsadmin", "proxy", "configure",
                                                        "certbot"]
    assert {w.key.split(".")[2].split("[")[0] for w in site.warnings} == {"environment", "command"}
    assert all("Jinja" in w.problem for w in site.warnings)


def schema_valid(value: Any) -> bool:
    schema = services_json_schema()
    return _mini_valid(schema, value, schema)


def test_schema_is_the_rule_tables() -> None:
    schema = services_json_schema()
    assert list(schema["$defs"]["service"]["properties"]) == [k.name for k in service_keys()]
    assert list(schema["properties"]) == [k.name for k in FILE_KEYS]
    assert schema["$defs"]["service"]["required"] == ["image"]


def test_schema_accepts_the_pdns_example_and_refuses_errors() -> None:
    doc = yaml.safe_load((PDNS_SERVICES / "powerdns.yml").read_text())
    assert schema_valid(doc)
    for lines, _key, _words in (ERRORS["unknown-key"], ERRORS["mode"], ERRORS["volume-type"],
                                ERRORS["port-mode"], ERRORS["drbd-no-size"]):
        assert not schema_valid(yaml.safe_load(HEAD + lines))


def test_cli_prints_the_services_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--services"]) == 0
    assert json.loads(capsys.readouterr().out)["$id"].endswith("services.yml.json")
