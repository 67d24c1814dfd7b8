"""follow-swarm-service (hives): the daemon that moves a service's VIPs (HIVE_VIP*) and node label (HIVE_MARK) with
its task, installed as /usr/lib/follow-swarm-service.py and run by systemd with the admin's ~/docker python.

The daemon is our own (hive_nornir/payloads/follow_swarm_daemon.py, shipped as package data); gratuitous ARP uses
iputils' `arping -U` instead of scapy. HIVE_DNAT_PORTS* / HIVE_ENABLE_VIP_SNAT* rules are made for IPv4 VIPs only.
"""

from __future__ import annotations

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.payload import payload_text
from hive_nornir.primitives.base import Primitive, q
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.service import Service, restart_handler
from hive_nornir.tasks.host.pip_venv import admin_home
from hive_nornir.tasks.repository.registry import daemon_reload_if_needed

NAME = "follow-swarm-service"
DAEMON = "/usr/lib/follow-swarm-service.py"
UNIT = f"/usr/lib/systemd/system/{NAME}.service"
SYNTAX_CHECK = "import ast, sys; ast.parse(open(sys.argv[1]).read())"  # vets the candidate, leaves no .pyc


def daemon_source() -> str:
    """The daemon's code as shipped in this package."""
    return payload_text("follow_swarm_daemon.py")


def unit_text(home: str) -> str:
    """hive-builder's unit: the venv's python runs the daemon, restarted 15 s after any exit, ordered after docker.

    KillMode=mixed (ours): the stop signal goes to the daemon only, so the `ip`/`iptables`/`systemctl` it runs while
    taking things back at shutdown are not killed with it."""
    return (
        "[Unit]\n"
        "Description=follow swarm services: VIPs and node labels move with their tasks\n"
        "After=docker.service\n"
        "Wants=docker.service\n\n"
        "[Service]\n"
        f"ExecStart={home}/docker/bin/python {DAEMON}\n"
        "Restart=always\n"
        "RestartSec=15s\n"
        "KillMode=mixed\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def tool_packages(facts: Facts) -> list[str]:
    """`ip`, iputils' `arping` and `ping`; Debian also the docker SDK the venv sees (EL: pip, below)."""
    if facts.is_redhat:
        return ["iproute", "iputils"]
    return ["iproute2", "iputils-arping", "iputils-ping", "python3-docker"]


def selinux_primitives(facts: Facts, home: str) -> list[Primitive]:
    """EL with SELinux: the venv's python labelled bin_t so systemd may run it from a home directory."""
    if not facts.is_redhat or facts.selinux.lower() in ("absent", "disabled"):
        return []
    spec = f"{home}/docker/bin/python.*"
    return [Command(cmd=f"semanage fcontext -a -t bin_t {q(spec)} && restorecon -R {q(home + '/docker/bin')}",
                    unless=f"semanage fcontext -l -C | grep -qF {q(spec)}")]


def follow_primitives(facts: Facts, home: str) -> list[Primitive]:
    """Tools, SDK, daemon file, unit, a daemon-reload when the unit changed, the service enabled and running."""
    restart = restart_handler(NAME)
    python = f"{home}/docker/bin/python"
    items: list[Primitive] = [Packages(names=tool_packages(facts))]
    if facts.is_redhat:
        items.append(Command(cmd=f"{q(home + '/docker/bin/pip')} install -q docker",
                             unless=f"{q(python)} -c 'import docker'"))
    items += [
        *selinux_primitives(facts, home),
        File(path=DAEMON, content=daemon_source(), mode="0644", validate=f"{q(python)} -c {q(SYNTAX_CHECK)} %s")
        .with_notify(restart),
        File(path=UNIT, content=unit_text(home)).with_notify(restart),
        daemon_reload_if_needed(f"{NAME}.service"),
        Service(name=NAME, enabled=True, state="started"),
    ]
    return items


def follow_swarm_service(ctx: TaskContext) -> None:
    """Install and start the daemon in the admin's ~/docker venv (made by pip-venv)."""
    facts = ctx.facts
    if not (facts.is_debian or facts.is_redhat):
        raise StepFailed(f"{NAME}: unsupported OS family {facts.os_family!r}")
    user = str(ctx.var("hive_admin") or "admin")
    home = admin_home(ctx, user)
    if not ctx.check:
        venv = ctx.run(f"test -x {q(home + '/docker/bin/python')}", check=False)
        if not venv.ok:
            raise StepFailed(f"{NAME}: {home}/docker/bin/python is missing: run the pip-venv step first")
    ctx.ensure(follow_primitives(facts, home))
