"""swarm (play "build cluster"): init on first_hive, the other hives join, node labels per group (§3.24).

Two steps so no host ever waits on another inside a step: `swarm_init` on first_hive, then `swarm_join` on every
hive (joins the others, converges the group labels of all). The join token never appears in argv of a logged
command or in a report: it is read on first_hive and handed to `docker swarm join` through stdin.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.netslice import InternalNets, gwbridge_v6, slice_internal_cidr
from hive_nornir.primitives.base import Plan, Primitive
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.probes import argv, parse_kv

if TYPE_CHECKING:
    from hive_nornir.engine.protocols import StageHost

SWARM_PORT = 2377
JOIN_TIMEOUT = 120  # seconds `timeout(1)` gives one join on the host
STATE_FORMAT = "{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}}"
NODE_STATE = "{{.Swarm.LocalNodeState}}"
# gwbridge is made only before init/join: on a node in no swarm yet, or whose engine does not answer (check mode
# on a fresh host predicts it); never on a member, nor on a node in a broken state (that is refused first)
NOT_MEMBER = (f"case \"$({argv('docker', 'info', '--format', NODE_STATE)} 2>/dev/null)\" in "
              "inactive|'') true;; *) false;; esac")
BROKEN_STATES = ("error", "pending", "locked")
MODES = ("manager", "worker")


@dataclass(frozen=True)
class SwarmState:
    """What `docker info` says about this engine's swarm membership."""

    node_state: str  # inactive | pending | active | error | locked | "" (no engine)
    node_id: str

    @property
    def active(self) -> bool:
        """A member (manager or worker) already: never init or join again."""
        return self.node_state == "active"


def parse_swarm_state(stdout: str, ok: bool) -> SwarmState:
    """`docker info --format STATE_FORMAT` output; an engine that does not answer has no state."""
    if not ok:
        return SwarmState("", "")
    words = stdout.split()
    return SwarmState(words[0] if words else "", words[1] if len(words) > 1 else "")


def swarm_state_problem(node_state: str, error: str = "") -> str:
    """Why init/join must not run on a node in this state ("" when it may): each broken state is refused with
    what to do, never repaired automatically (each repair drops swarm state or needs a key we do not hold)."""
    said = f" (docker says: {error.strip()})" if error.strip() else ""
    if node_state == "error":
        return (f"docker reports this node's swarm state as 'error'{said}: `docker swarm init`/`join` would only "
                "say 'already part of a swarm'. Not repaired automatically: `docker swarm leave --force` drops "
                "this node's swarm state (on a manager that holds the cluster's raft log it destroys the swarm). "
                "Repair by hand: on a node that can rejoin, `docker swarm leave --force` and run again; on the "
                "last manager, `docker swarm init --force-new-cluster`")
    if node_state == "pending":
        return (f"this node's swarm state is 'pending'{said}: a join is in progress or stuck. Wait for it, or "
                "`docker swarm leave --force` on this node and run again")
    if node_state == "locked":
        return (f"this node's swarm is locked (autolock){said}: unlock it with `docker swarm unlock` and the "
                "swarm's unlock key (hive_nornir does not hold it), then run again")
    return ""


@dataclass(eq=False)
class SwarmInit(Primitive):
    """`docker swarm init` on a node in no swarm; nothing on a member; a node in a broken state is refused (in
    check mode too) before anything changes, with what to do."""

    advertise_addr: str
    kind = "swarm"

    @property
    def ident(self) -> str:
        """Reports name the action."""
        return "swarm[init]"

    @property
    def command(self) -> str:
        """What runs on a node in no swarm."""
        return argv("docker", "swarm", "init", "--advertise-addr", self.advertise_addr)

    def probe(self, facts: Facts) -> str:
        """The node's swarm state, and docker's own error text when the state is a broken one."""
        info = argv("docker", "info", "--format", NODE_STATE)
        why = argv("docker", "info", "--format", "{{.Swarm.Error}}")
        return (f"s=$({info} 2>/dev/null); echo \"state=$s\"; case \"$s\" in {'|'.join(BROKEN_STATES)}) "
                f"echo \"error=$({why} 2>/dev/null | tr '\\n' ' ')\";; esac")

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """active: nothing; inactive: init; broken: error; no answer: init, assuming docker comes first."""
        kv = parse_kv(probe_output)
        state = kv.get("state", "").strip()
        if state == "active":
            return Plan()
        problem = swarm_state_problem(state, kv.get("error", ""))
        if problem:
            return Plan(error=problem)
        init = Plan(changed=True, summary=f"docker swarm init (advertise {self.advertise_addr})",
                    diff=f"$ {self.command}\n", commands=[self.command])
        if state != "inactive":
            init.missing = f"the docker engine does not answer `docker info` (swarm state {state or 'unknown'!r})"
        return init


def read_swarm_state(ctx: TaskContext) -> SwarmState:
    """Read-only, so it also runs in check mode (no engine yet: empty state, everything is predicted)."""
    result = ctx.run(argv("docker", "info", "--format", STATE_FORMAT), check=False)
    return parse_swarm_state(result.stdout, result.ok)


def gwbridge_command(nets: InternalNets, subnet_v6: str | None = None) -> str | None:
    """§3.24 step 2: docker_gwbridge from internal_cidr (and internal_cidr_v6), None when neither is set."""
    if nets.docker_gwbridge is None and subnet_v6 is None:
        return None
    subnets = ["--subnet", nets.docker_gwbridge] if nets.docker_gwbridge else []
    if subnet_v6:
        subnets += ["--ipv6", "--subnet", subnet_v6]
    return argv("docker", "network", "create", *subnets,
                "--opt", "com.docker.network.bridge.name=docker_gwbridge",
                "--opt", "com.docker.network.bridge.enable_icc=false",
                "--opt", "com.docker.network.bridge.enable_ip_masquerade=true", "docker_gwbridge")


def gwbridge_primitives(nets: InternalNets, subnet_v6: str | None = None) -> list[Primitive]:
    """Before init/join only: once a node is in a swarm docker made (or kept) its own gwbridge."""
    cmd = gwbridge_command(nets, subnet_v6)
    if cmd is None:
        return []
    return [Command(cmd=cmd, unless=argv("docker", "network", "inspect", "docker_gwbridge"), onlyif=NOT_MEMBER)]


def ingress_command(nets: InternalNets) -> str:
    """§3.24 step 4: drop docker's `ingress` (it asks for confirmation) and create apiarist-ingress."""
    return (f"if {argv('docker', 'network', 'inspect', 'ingress')} >/dev/null 2>&1; "
            f"then yes | {argv('docker', 'network', 'rm', 'ingress')}; fi\n"
            + argv("docker", "network", "create", "--driver", "overlay", "--ingress",
                   f"--subnet={nets.ingress_subnet}", f"--gateway={nets.ingress_gateway}", nets.ingress_name))


def init_primitives(private_ip: str, nets: InternalNets, subnet_v6: str | None = None) -> list[Primitive]:
    """gwbridge, `swarm init` unless already a member (a broken swarm state is refused), then the sliced
    ingress unless it exists."""
    items = gwbridge_primitives(nets, subnet_v6)
    items.append(SwarmInit(private_ip))
    if nets.sliced:
        items.append(Command(cmd=ingress_command(nets), unless=argv("docker", "network", "inspect", nets.ingress_name)))
    return items


def join_script(private_ip: str, manager_ip: str) -> str:
    """The token comes on stdin into a shell variable: never in the logged command line."""
    return (f"read -r T; {argv('timeout', JOIN_TIMEOUT, 'docker', 'swarm', 'join', '--token')} \"$T\" "
            + argv("--advertise-addr", private_ip, f"{manager_ip}:{SWARM_PORT}"))


def label_command(node_id: str, labels: list[str]) -> str:
    """`docker node update --label-add g=true ...` for the labels the node lacks."""
    adds = [word for label in labels for word in ("--label-add", f"{label}=true")]
    return argv("docker", "node", "update", *adds, node_id)


def host_groups(host: StageHost) -> set[str]:
    """Names of the host's inventory groups (hives, servers, first_hive, the stage, ...), like group_names."""
    return {str(getattr(g, "name", g)) for g in host.groups}


def group_labels(host: StageHost) -> list[str]:
    """One node label per inventory group, sorted so the command line is stable."""
    return sorted(host_groups(host))


def missing_labels(current_json: str, wanted: list[str]) -> list[str]:
    """Labels not yet set to "true" in `docker node inspect --format '{{json .Spec.Labels}}'`."""
    try:
        current = json.loads(current_json or "{}") or {}
    except ValueError:
        current = {}
    return [label for label in wanted if current.get(label) != "true"]


def swarm_mode(ctx: TaskContext) -> str:
    """hive_swarm_mode: manager (default) or worker."""
    mode = str(ctx.var("hive_swarm_mode") or "manager")
    if mode not in MODES:
        raise StepFailed(f"hive_swarm_mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def private_ip(host: StageHost) -> str:
    """The address swarm advertises: the host's private address, never the SSH endpoint."""
    ip = host.get("hive_private_ip")
    if not ip:
        raise StepFailed(f"{host.name}: no hive_private_ip to advertise")
    return str(ip)


def internal_nets(ctx: TaskContext) -> tuple[InternalNets, str | None]:
    """The stage's slices (bad internal_cidr fails the step with the reason)."""
    try:
        return slice_internal_cidr(ctx.var("hive_internal_cidr")), gwbridge_v6(ctx.var("hive_internal_cidr_v6"))
    except ValueError as e:
        raise StepFailed(str(e)) from e


# -- first hive, seen from any hive ------------------------------------------------------------------------
def first_hive(ctx: TaskContext) -> StageHost:
    """The stage's first_hive (found in the whole stage, so --limit cannot hide it)."""
    for host in ctx.stage_hosts().values():
        if "first_hive" in host_groups(host):
            return host
    raise StepFailed("the stage has no first_hive")


def _shared_lock(ctx: TaskContext, key: str) -> threading.Lock:
    """A named lock shared by every host of the run (joins are serialised, one raft change at a time)."""
    with ctx.lock:
        lock: threading.Lock = ctx.shared.setdefault(key, threading.Lock())
    return lock


def on_first_hive(ctx: TaskContext, command: str) -> tuple[bool, str]:
    """Run a command on first_hive (our own session when we are it); (ok, stdout)."""
    first = first_hive(ctx)
    if first.name == ctx.name:
        r = ctx.run(command, check=False)
        return r.ok, r.stdout
    with _shared_lock(ctx, "swarm:first_hive_session"):
        session = ctx.session_to(first)
        r = session.run(command, timeout=ctx.apply_timeout)
    return r.ok, r.stdout


def join_token(ctx: TaskContext, mode: str) -> str:
    """Read once per run from first_hive, kept in ctx.shared (never logged, never reported)."""
    key = f"swarm:token:{mode}"
    with _shared_lock(ctx, "swarm:token"):
        token = ctx.shared.get(key)
        if not token:
            ok, out = on_first_hive(ctx, argv("docker", "swarm", "join-token", "-q", mode))
            if not ok or not out.strip():
                raise StepFailed(f"cannot read the {mode} join token on {first_hive(ctx).name}: "
                                 "is its swarm initialised (step swarm-init)?")
            token = out.strip()
            ctx.shared[key] = token
    return str(token)


# -- tasks ---------------------------------------------------------------------------------------------------
def swarm_init(ctx: TaskContext) -> None:
    """first_hive: gwbridge, `docker swarm init --advertise-addr <private ip>`, apiarist-ingress."""
    nets, v6 = internal_nets(ctx)
    ctx.ensure(init_primitives(private_ip(ctx.host), nets, v6))


def swarm_join(ctx: TaskContext) -> None:
    """Every hive: the others join (once), then each node gets one label per inventory group."""
    nets, v6 = internal_nets(ctx)
    state = read_swarm_state(ctx)
    if "first_hive" not in host_groups(ctx.host) and not state.active:
        join(ctx, state, nets, v6)
        state = read_swarm_state(ctx)
    ensure_labels(ctx, state)


def join(ctx: TaskContext, state: SwarmState, nets: InternalNets, v6: str | None) -> None:
    """gwbridge first, then join as hive_swarm_mode with the token on stdin; check mode only predicts."""
    mode = swarm_mode(ctx)
    problem = swarm_state_problem(state.node_state)
    if problem:  # in check mode too: a broken state is an error, not a prediction
        raise StepFailed(problem)
    if state.node_state not in ("inactive", ""):
        raise StepFailed(f"swarm state is {state.node_state!r}: leave or repair the node by hand, "
                         "it is not joined again automatically")
    ctx.ensure(gwbridge_primitives(nets, v6))
    manager = private_ip(first_hive(ctx))
    summary = f"join the swarm of {manager} as {mode}"
    if ctx.check:
        ctx.changed(f"swarm[join {mode}]", summary, f"$ {join_script(private_ip(ctx.host), manager)}\n")
        return
    token = join_token(ctx, mode)
    with _shared_lock(ctx, "swarm:join"):
        ctx.run(join_script(private_ip(ctx.host), manager), stdin=token + "\n",
                timeout=JOIN_TIMEOUT + 30)
    ctx.changed(f"swarm[join {mode}]", summary)


def ensure_labels(ctx: TaskContext, state: SwarmState) -> None:
    """Labels from first_hive (a manager); only the missing ones are added, so a re-run changes nothing."""
    wanted = group_labels(ctx.host)
    if not state.active or not state.node_id:
        if ctx.check:
            ctx.changed("swarm[labels]", "label node " + ", ".join(f"{g}=true" for g in wanted))
            return
        problem = swarm_state_problem(state.node_state)
        raise StepFailed(problem or f"swarm state is {state.node_state or 'unknown'!r} after init/join: "
                                    "cannot label")
    ok, out = on_first_hive(ctx, argv("docker", "node", "inspect", "--format",
                                       "{{json .Spec.Labels}}", state.node_id))
    if not ok:
        raise StepFailed(f"node {state.node_id} is not known to {first_hive(ctx).name}")
    todo = missing_labels(out.strip(), wanted)
    if not todo:
        return
    summary = "label node " + ", ".join(f"{g}=true" for g in todo)
    if not ctx.check:
        ok, _ = on_first_hive(ctx, label_command(state.node_id, todo))
        if not ok:
            raise StepFailed(f"`{label_command(state.node_id, todo)}` failed on {first_hive(ctx).name}")
    ctx.changed("swarm[labels]", summary, "".join(f"+ {g}=true\n" for g in todo))
