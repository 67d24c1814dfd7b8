"""rsyslogd-client (hives, when hive_tls_logging): forward every message to the repository's collector on 10514.

TCP with TLS (gtls), as hive-builder's docker.conf: the host's stage certificate authenticates it to the collector
(x509/certvalid there), and the collector must present a certificate naming the repository (x509/name here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.pki_paths import ca_anchor_path, host_cert_path, host_key_path
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.file import Template
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.service import Service, restart_handler
from hive_nornir.tasks.logs.rsyslogd import PORT

CONFIG = "/etc/rsyslog.d/docker.conf"
VALIDATE = "rsyslogd -N1 -f %s"  # the candidate alone is a complete config (global files + one action)
QUEUE_SIZE = 10000
TLS_PACKAGES = {"debian": ("rsyslog-gnutls",), "redhat": ("rsyslog-gnutls", "rsyslog-openssl", "gnutls-utils")}


@dataclass(frozen=True)
class ClientSpec:
    """Who forwards (its cert), to which repository, and whether its own collector already names the TLS files."""

    host: str
    repository: str
    is_collector: bool = False


def packages(facts: Facts) -> list[str]:
    """rsyslog with its TLS driver for this family (hive-builder's list on EL)."""
    return ["rsyslog", *TLS_PACKAGES["redhat" if facts.is_redhat else "debian"]]


def repository_name(stage_hosts: Mapping[str, Any]) -> str:
    """The stage's repository server: the forward target and the only peer name its certificate may carry."""
    for name, host in stage_hosts.items():
        if "repository" in [getattr(g, "name", g) for g in getattr(host, "groups", [])]:
            return str(name)
    raise StepFailed("rsyslogd-client: the stage has no repository server")


def client_conf_vars(facts: Facts, spec: ClientSpec) -> dict[str, object]:
    """Template variables; rsyslog refuses a global() file parameter set twice, so the collector host omits them."""
    return {"tls_files": not spec.is_collector, "ca_file": ca_anchor_path(facts),
            "cert_file": host_cert_path(spec.host), "key_file": host_key_path(spec.host),
            "target": spec.repository, "port": PORT, "queue_size": QUEUE_SIZE}


def client_primitives(facts: Facts, spec: ClientSpec) -> list[Primitive]:
    """Packages, the forwarding config (vetted by rsyslogd -N1, restart on change), running rsyslog."""
    return [
        Packages(names=packages(facts)),
        Template(path=CONFIG, template="logs/rsyslog-client.conf.j2", variables=client_conf_vars(facts, spec),
                 validate=VALIDATE).with_notify(restart_handler("rsyslog")),
        Service(name="rsyslog", enabled=True, state="started"),
    ]


def rsyslogd_client(ctx: TaskContext) -> None:
    """Forward this host's logs to the repository; a changed config restarts rsyslog at the end of the phase."""
    facts = ctx.facts
    if not (facts.is_debian or facts.is_redhat):
        raise StepFailed(f"rsyslogd-client: unsupported OS family {facts.os_family!r}")
    is_collector = any(getattr(g, "name", g) == "repository" for g in ctx.host.groups)
    spec = ClientSpec(host=ctx.name, repository=repository_name(ctx.stage_hosts()),
                      is_collector=is_collector)
    ctx.ensure(client_primitives(facts, spec))
