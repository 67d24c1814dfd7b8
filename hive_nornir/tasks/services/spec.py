"""A service definition as the Engine API's ServiceSpec: hive-builder's deploy-services (docker_swarm_service) key by
key, as pure data, so every mapping is unit-tested and a spec's hash says whether anything changed.

hive-builder's defaults: hostname = service name; syslog logging to the repository (udp, or tcp+tls with
hive_tls_logging, facility local0, tag = service); hosts entries for every server of the stage; every network of
the stage; labels HIVE_STANDALONE plus the service's labels (non-strings JSON-encoded); limits from cpu_limit and
mem_limit. `command` is the swarm's Args, `entrypoint` its Command (hive-builder: "Docker calls it command, but
swarmkit calls it args").
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from hive_nornir.services.model import Service

SPEC_LABEL = "hive_nornir.spec"  # sha256 of what we asked for: equal means nothing to do
IMAGE_LABEL = "hive_nornir.image"  # container label: the image id the spec was made for
DEFAULT_SYSLOG_PORT = 10514
DEFAULT_REGISTRY_PORT = 5000
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_MEMORY = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtTpP]?)[iI]?[bB]?")
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


@dataclass(frozen=True)
class DeployEnv:
    """What deploy-services knows besides the definition: the stage's hosts, networks and repository."""

    image: str  # the image reference to run (tag-mapped, pinned to a digest when the registry gave one)
    hosts: dict[str, str]  # every server of the stage -> hive_private_ip
    networks: tuple[str, ...]  # every network of the stage (the default of a service without `networks`)
    repository: str = ""  # the repository server's name (syslog target)
    syslog_port: int = DEFAULT_SYSLOG_PORT
    tls_logging: bool = False
    home: str = "/home/admin"  # the admin's home on first_hive (~/.docker client files for tcp+tls syslog)
    labels: dict[str, str] = field(default_factory=dict)  # ours: owner labels
    env: dict[str, str] = field(default_factory=dict)  # proxy settings of first_hive, before `environment`
    image_id: str | None = None  # the pulled image's id: a new image under the same tag changes the spec


def duration_ns(text: str) -> int:
    """Go's duration syntax (30s, 1m30s, 500ms) in nanoseconds, as the Engine API wants it."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration like 30s or 1m30s")
    return int(sum(float(n) * _NS[u] for n, u in parts))


def memory_bytes(value: Any) -> int:
    """mem_limit as docker_swarm_service reads it: bytes, or 512M / 2G / 1.5g (powers of 1024)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    m = _MEMORY.fullmatch(str(value).strip())
    if not m:
        raise ValueError(f"{value!r} is not a size like 512M")
    return int(float(m.group(1)) * 1024 ** _POWERS[m.group(2).lower()])


def words(value: Any) -> list[str]:
    """A command as a list: a string is split as a shell would (docker_swarm_service's command), a list kept."""
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def env_text(value: Any) -> str:
    """An environment value as a string (YAML booleans as true/false, numbers as written)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def image_ref(service: Service, stage: str, registry: str, tag_mapping: dict[str, str]) -> str:
    """The image deploy-services pulls and runs: the built image in the stage registry, pull_from on the pull_on
    stages, or the tag as written; then remapped by tag-mapping.json."""
    build = service.build
    if build is not None:
        image = str(build.options["pull_from"]) if build.pulled_on(stage) else f"{registry}/{build.name}:latest"
    else:
        image = str(service.image_tag or "")
    return tag_mapping.get(image, image)


def default_logging(service: str, env: DeployEnv) -> dict[str, Any]:
    """hive-builder's default: syslog to the repository's collector, facility local0, tagged with the service."""
    scheme = "tcp+tls" if env.tls_logging else "udp"
    options = {"syslog-address": f"{scheme}://{env.repository}:{env.syslog_port}", "syslog-facility": "local0",
               "tag": service}
    if env.tls_logging:
        d = f"{env.home.rstrip('/')}/.docker"
        options.update({"syslog-tls-ca-cert": f"{d}/ca.pem", "syslog-tls-cert": f"{d}/cert.pem",
                        "syslog-tls-key": f"{d}/key.pem"})
    return {"driver": "syslog", "options": options}


def _mount(m: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"Target": str(m["target"]), "Source": str(m.get("source") or ""),
                           "Type": str(m.get("type") or "bind")}
    if m.get("readonly"):
        out["ReadOnly"] = True
    return out


def _healthcheck(h: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "test" in h:
        test = h["test"]
        out["Test"] = ["CMD-SHELL", test] if isinstance(test, str) else [str(t) for t in test]
    for key, name in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod")):
        if key in h:
            out[name] = duration_ns(str(h[key]))
    if "retries" in h:
        out["Retries"] = int(h["retries"])
    return out


def _restart(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "condition" in r:
        out["Condition"] = str(r["condition"])
    for key, name in (("delay", "Delay"), ("window", "Window")):
        if key in r:
            out[name] = duration_ns(str(r[key]))
    if "max_attempts" in r:
        out["MaxAttempts"] = int(r["max_attempts"])
    return out


def _placement(p: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "constraints" in p:
        c = p["constraints"]
        out["Constraints"] = [c] if isinstance(c, str) else [str(x) for x in c]
    if "preferences" in p:
        out["Preferences"] = [{"Spread": {"SpreadDescriptor": str(v)}} for pref in p["preferences"]
                              for k, v in pref.items() if k == "spread"]
    return out


def _labels(service: Service, env: DeployEnv) -> dict[str, str]:
    out = {"HIVE_STANDALONE": str(bool(service.get("standalone", False)))}
    for key, value in (service.get("labels") or {}).items():
        out[str(key)] = value if isinstance(value, str) else json.dumps(value)
    out.update(env.labels)
    return out


def container_spec(service: Service, env: DeployEnv) -> dict[str, Any]:
    """TaskTemplate.ContainerSpec."""
    c: dict[str, Any] = {"Image": env.image, "Hostname": service.name}
    if env.image_id:
        c["Labels"] = {IMAGE_LABEL: env.image_id}
    if service.get("entrypoint") is not None:
        c["Command"] = words(service.get("entrypoint"))
    if service.get("command") is not None:
        c["Args"] = words(service.get("command"))
    environment = {**env.env, **{str(k): env_text(v) for k, v in (service.get("environment") or {}).items()}}
    if environment:
        c["Env"] = [f"{k}={v}" for k, v in environment.items()]
    if service.mounts:
        c["Mounts"] = [_mount(m) for m in service.mounts]
    hosts = {**env.hosts, **{str(k): str(v) for k, v in (service.get("hosts") or {}).items()}}
    if hosts:
        c["Hosts"] = [f"{ip} {name}" for name, ip in hosts.items()]
    if service.get("dns"):
        dns = service.get("dns")
        c["DNSConfig"] = {"Nameservers": [dns] if isinstance(dns, str) else [str(d) for d in dns]}
    for key, name in (("user", "User"), ("working_dir", "Dir")):
        if service.get(key) is not None:
            c[name] = str(service.get(key))
    if service.get("stop_grace_period") is not None:
        c["StopGracePeriod"] = duration_ns(str(service.get("stop_grace_period")))
    if service.get("healthcheck"):
        c["HealthCheck"] = _healthcheck(service.get("healthcheck"))
    if service.get("cap_add"):
        c["CapabilityAdd"] = [str(x) for x in service.get("cap_add")]
    if service.get("cap_drop"):
        c["CapabilityDrop"] = [str(x) for x in service.get("cap_drop")]
    if service.get("sysctls"):
        c["Sysctls"] = {str(k): env_text(v) for k, v in service.get("sysctls").items()}
    return c


def service_spec(service: Service, env: DeployEnv) -> dict[str, Any]:
    """The whole ServiceSpec (Name, Labels, TaskTemplate, Mode, EndpointSpec), our labels included, the spec's
    hash among them (hive_nornir.spec) so a later run compares one label instead of docker's filled-in spec."""
    task: dict[str, Any] = {"ContainerSpec": container_spec(service, env)}
    logging = service.get("logging") or default_logging(service.name, env)
    task["LogDriver"] = {"Name": str(logging.get("driver") or "json-file"),
                         **({"Options": {str(k): env_text(v) for k, v in logging["options"].items()}}
                            if logging.get("options") else {})}
    limits: dict[str, Any] = {}
    if service.get("cpu_limit") is not None:
        limits["NanoCPUs"] = int(float(service.get("cpu_limit")) * 10**9)
    if service.get("mem_limit") is not None:
        limits["MemoryBytes"] = memory_bytes(service.get("mem_limit"))
    if limits:
        task["Resources"] = {"Limits": limits}
    if service.get("restart_config"):
        task["RestartPolicy"] = _restart(service.get("restart_config"))
    if service.get("placement"):
        task["Placement"] = _placement(service.get("placement"))
    networks = service.get("networks")
    task["Networks"] = [{"Target": str(n)} for n in (env.networks if networks is None else networks)]
    if service.get("mode") == "global":
        mode: dict[str, Any] = {"Global": {}}
    else:
        replicas = service.get("replicas")
        mode = {"Replicated": {"Replicas": 1 if replicas is None or int(replicas) < 0 else int(replicas)}}
    endpoint: dict[str, Any] = {"Mode": str(service.get("endpoint_mode") or "vip")}
    if service.ports:
        endpoint["Ports"] = [{"Protocol": p.protocol, "TargetPort": p.target_port, "PublishedPort": p.published_port,
                              "PublishMode": p.mode or "ingress"} for p in service.ports]
    labels = _labels(service, env)
    spec: dict[str, Any] = {"Name": service.name, "Labels": labels, "TaskTemplate": task, "Mode": mode,
                            "EndpointSpec": endpoint}
    labels[SPEC_LABEL] = spec_hash(spec)
    return spec


def spec_hash(spec: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the spec without its own hash label."""
    labels = {k: v for k, v in spec.get("Labels", {}).items() if k != SPEC_LABEL}
    body = json.dumps({**spec, "Labels": labels}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:32]
