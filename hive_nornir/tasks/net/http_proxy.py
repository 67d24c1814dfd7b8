"""http-proxy (servers, when hive_http_proxy): the host side of the controller's proxy, before base points
/etc/environment at it (hive-builder's base: setup_proxy_env.yml, pip.conf, the dnf-makecache override).

With `host:port` the proxy is an SSH remote forward (hive_nornir/transport/forward.py) that sshd binds on the host's
private address only once `GatewayPorts` allows it: the sshd drop-in (the sshd step's safe sequence, run here
first) turns it on, the session is renewed, and the forward must then be listening there, or the step fails here
instead of every apt/pip/docker pull later. A full URL is the hosts' own proxy: files only.
"""

from __future__ import annotations

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.file import File
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.tasks.ssh.sshd import sshd
from hive_nornir.transport.forward import ForwardSpec, forward_of, forward_spec

PIP_CONF = "/etc/pip.conf"
PIP_CONF_TEXT = ("# managed by hive_nornir (http-proxy): pip through the proxy trusts the package index hosts\n"
                 "[global]\ntrusted-host = pypi.org files.pythonhosted.org pypi.python.org\n")
DNF_MAKECACHE_DIR = "/etc/systemd/system/dnf-makecache.service.d"
DNF_MAKECACHE_OVERRIDE = f"{DNF_MAKECACHE_DIR}/override.conf"
DNF_MAKECACHE_TEXT = "[Service]\nEnvironmentFile=-/etc/environment\n"
LOOPBACK = ("127.", "[::1]", "::1")


def proxy_file_primitives(facts: Facts) -> list[Primitive]:
    """pip.conf on every family; on EL dnf's timer job reads the proxy from /etc/environment too."""
    items: list[Primitive] = [File(path=PIP_CONF, content=PIP_CONF_TEXT)]
    if facts.is_redhat:
        items += [Directory(path=DNF_MAKECACHE_DIR, mode="0755"),
                  File(path=DNF_MAKECACHE_OVERRIDE, content=DNF_MAKECACHE_TEXT).with_notify("daemon-reload")]
    return items


def listen_command(port: int) -> str:
    """Local addresses listening on the proxy port (`ss` from iproute, on both families)."""
    return f"ss -Hltn 'sport = :{port}' | awk '{{print $4}}'"


def listening_where(ss_output: str, spec: ForwardSpec) -> str:
    """'' when a non-loopback listener serves the private address, else why the forward is not usable."""
    addrs = [line.strip() for line in ss_output.splitlines() if line.strip()]
    if not addrs:
        return f"nothing listens on port {spec.bind_port}"
    wanted = {f"{spec.bind_addr}:{spec.bind_port}", f"0.0.0.0:{spec.bind_port}", f"*:{spec.bind_port}",
              f"[::]:{spec.bind_port}"}
    if wanted & set(addrs):
        return ""
    if all(a.startswith(LOOPBACK) for a in addrs):
        return f"sshd binds the forward to loopback only ({', '.join(addrs)}): GatewayPorts is not in effect"
    return f"port {spec.bind_port} listens on {', '.join(addrs)}, not on {spec.bind_addr}"


def verify_forward(ctx: TaskContext, spec: ForwardSpec) -> None:
    """The controller's proxy must be reachable at <private ip>:<port> from now on."""
    forward = forward_of(ctx.session)
    if forward is None:
        raise StepFailed("no proxy forward on this session (hive_http_proxy is set)")
    if forward.error:
        raise StepFailed(forward.error)
    why = listening_where(ctx.run(listen_command(spec.bind_port)).stdout, spec)
    if why:
        raise StepFailed(f"proxy forward to {spec.target_host}:{spec.target_port} not usable: {why}")


def http_proxy(ctx: TaskContext) -> None:
    """GatewayPorts (safely) and a renewed forward when the proxy is forwarded; pip.conf and dnf files always."""
    try:
        spec = forward_spec(ctx.var)
    except ValueError as e:
        raise StepFailed(str(e)) from e
    if spec is not None:
        if not spec.bind_addr:
            raise StepFailed("hive_http_proxy is forwarded to hive_private_ip, and this host has none")
        sshd(ctx)
        if not ctx.check:
            verify_forward(ctx, spec)
    ctx.ensure(proxy_file_primitives(ctx.facts))
