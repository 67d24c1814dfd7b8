"""Provider `docker`: the stage's servers as systemd containers reached only via 127.0.0.1 ports."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from hive_nornir.inventory import build_inventory
from hive_nornir.lab import HOST_TAG, ensure_image
from hive_nornir.lab.build import LabImageError, docker_client
from hive_nornir.providers.common import (
    HostPlan,
    Log,
    ProviderError,
    ensure_context_dir,
    ensure_keypair,
    judge_host_key,
    key_fingerprint,
    known_host_key,
    known_hosts_name,
    load_pkey,
    nolog,
    plan_hosts,
    public_key,
    read_state,
    run,
    site_name,
    stage_cidr,
    update_known_hosts,
    wait_for_ssh,
    write_state,
)
from hive_nornir.providers.ownership import (
    STATE_ADOPTED,
    STATE_ID,
    Resource,
    adopted_of,
    new_stage_id,
    owner_labels,
    refuse_foreign,
    stage_id_of,
)

LABEL_SITE = "hive_nornir.site"
LABEL_STAGE = "hive_nornir.stage"
LABEL_HOST = "hive_nornir.host"
INOTIFY_MIN = 1024
INOTIFY_PATH = Path("/proc/sys/fs/inotify/max_user_instances")
SSH_WAIT_S = 120.0
DISK_DIR = "disks"  # under the stage context dir: one sparse <short>.img per hive with a mirrored disk
DISK_DEVICE = "/dev/vdb"  # where the hive sees it (hive-builder's device order finds /dev/vdb)

# Runs inside the container as root; the public key arrives on stdin. Prints "changed" if it changed anything.
INJECT_SCRIPT = r"""
set -eu
user="$1"; key=$(cat); changed=""
case "$key" in ssh-*) ;; *) echo "no key on stdin" >&2; exit 2 ;; esac
if ! id -u "$user" >/dev/null 2>&1; then useradd -m -s /bin/bash "$user"; changed=1; fi
home=$(getent passwd "$user" | cut -d: -f6)
add_key() {  # owner dir
  install -d -m 700 -o "$1" -g "$(id -gn "$1")" "$2/.ssh"
  f="$2/.ssh/authorized_keys"
  if ! { [ -f "$f" ] && grep -qxF "$key" "$f"; }; then
    printf '%s\n' "$key" >> "$f"; changed=1
  fi
  chown "$1:$(id -gn "$1")" "$f"; chmod 600 "$f"
}
add_key root /root
add_key "$user" "$home"
sud=/etc/sudoers.d/hive-admin
line="$user ALL=(ALL) NOPASSWD:ALL"
if ! { [ -f "$sud" ] && grep -qxF "$line" "$sud"; }; then
  printf '%s\n' "$line" > "$sud.tmp"; chmod 440 "$sud.tmp"
  visudo -cqf "$sud.tmp"; mv -f "$sud.tmp" "$sud"; changed=1
fi
[ -n "$changed" ] && echo changed || echo ok
"""


def names(site: Any, stage: str) -> tuple[str, str]:
    """(site name, network name): the network is `hive-<site>-<stage>`."""
    sname = site_name(site)
    return sname, f"hive-{sname}-{stage}"


def container_name(sname: str, stage: str, plan: HostPlan) -> str:
    """`hive-<site>-<stage>-<short host name>`, unique per machine."""
    return f"hive-{sname}-{stage}-{plan.short}"


def raise_inotify(log: Log) -> None:
    """~9 inotify instances per systemd host: the default 128 stalls boots at ~15 hosts (lab.md 0b)."""
    try:
        cur = int(INOTIFY_PATH.read_text())
    except (OSError, ValueError):
        return
    if cur >= INOTIFY_MIN:
        return
    try:
        INOTIFY_PATH.write_text(f"{INOTIFY_MIN}\n")
        log(f"raised fs.inotify.max_user_instances {cur} -> {INOTIFY_MIN} (systemd hosts need ~9 each)")
    except OSError as e:
        log(f"WARNING: fs.inotify.max_user_instances is {cur} and cannot be raised ({e}); "
            f"many hosts may fail to boot: run `sysctl -w fs.inotify.max_user_instances={INOTIFY_MIN}`")


def _client() -> docker.DockerClient:
    """The lab's docker client, its error turned into a provider error (build-infra reports those)."""
    try:
        return docker_client()
    except LabImageError as e:
        raise ProviderError(str(e)) from e


def _ensure_network(client: docker.DockerClient, net: str, cidr: str, labels: dict[str, str],
                    log: Log) -> bool:
    """Create the stage bridge network with the stage cidr; True when created."""
    try:
        n = client.networks.get(net)
    except docker.errors.NotFound:
        gateway = str(next(ipaddress.ip_network(cidr).hosts()))
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=cidr, gateway=gateway)])
        try:
            client.networks.create(net, driver="bridge", ipam=ipam, labels=labels)
        except docker.errors.APIError as e:
            raise ProviderError(f"cannot create docker network {net} ({cidr}): {e.explanation or e}") from e
        log(f"network {net}: created ({cidr}, gateway {gateway})")
        return True
    subnets = [c.get("Subnet") for c in (n.attrs.get("IPAM", {}).get("Config") or [])]
    if cidr not in subnets:
        raise ProviderError(f"docker network {net} exists with subnet {subnets}, the site says {cidr}; "
                            f"run destroy first")
    return False


# lab.md 2b: every capability but these. SYS_RESOURCE is refused on these VMs; the rest act on the shared kernel
# beyond the container and nothing in the lab needs them: SYS_TIME sets the controller's clock, SYS_MODULE loads
# kernel modules, SYS_BOOT allows kexec_load (systemd in a container exits instead of calling reboot()), SYSLOG
# reads and clears the host's kernel log (rsyslogd's imklog would steal the controller's /proc/kmsg), SYS_RAWIO
# is port I/O, WAKE_ALARM arms the real-time clock, AUDIT_CONTROL rewrites the host's audit rules, and
# DAC_READ_SEARCH opens host files by handle (open_by_handle_at). Kept: NET_ADMIN/NET_RAW (iptables, keepalived
# VRRP), SYS_ADMIN (mounts, dockerd, systemd), MKNOD (loop nodes for LVM), the default set for inner containers.
DROPPED_CAPS = ("SYS_RESOURCE", "SYS_TIME", "SYS_MODULE", "SYS_BOOT", "SYSLOG", "SYS_RAWIO", "WAKE_ALARM",
                "AUDIT_CONTROL", "DAC_READ_SEARCH")


def _host_config(client: docker.DockerClient, disk: str | None = None) -> dict[str, Any]:
    """lab.md 2b: all capabilities minus DROPPED_CAPS, systemd on cgroup v1 host ns;
    `disk` (a loop device) is passed in as /dev/vdb."""
    hc = client.api.create_host_config(
        port_bindings={22: ("127.0.0.1",)},  # ephemeral host port, loopback only
        cap_add=["ALL"], cap_drop=list(DROPPED_CAPS),
        security_opt=["seccomp=unconfined"],
        # loop devices for LVM tests; 259 (blkext) for the partitions of a loop disk, whose nodes the hive mknods
        device_cgroup_rules=["b 7:* rmw", "c 10:237 rmw", "b 259:* rmw"],
        devices=[f"{disk}:{DISK_DEVICE}:rwm"] if disk else None,
        cgroupns="host",
        binds={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
        tmpfs={"/run": "", "/run/lock": "", "/tmp": ""},
    )
    # `--security-opt systempaths=unconfined` is a CLI spelling; the API wants empty path lists.
    hc["MaskedPaths"] = []
    hc["ReadonlyPaths"] = []
    return dict(hc)


def _create(client: docker.DockerClient, image: str, cname: str, net: str, plan: HostPlan,
            labels: dict[str, str], disk: str | None = None) -> Container:
    """Create (not start) one host container on the stage network at its private IP."""
    api = client.api
    netcfg = api.create_networking_config({net: api.create_endpoint_config(ipv4_address=plan.private_ip)})
    try:
        res = api.create_container(
            image, name=cname, hostname=plan.short, detach=True, ports=[22],
            labels={**labels, LABEL_HOST: plan.name},
            volumes=["/var/lib/docker"],  # anonymous volume: inner dockerd gets overlay2, not vfs
            host_config=_host_config(client, disk), networking_config=netcfg,
        )
    except docker.errors.APIError as e:
        raise ProviderError(f"{plan.name}: cannot create container {cname}: {e.explanation or e}") from e
    return client.containers.get(res["Id"])


def _container_ip(c: Container, net: str) -> str | None:
    """The container's address on the stage network."""
    nets = c.attrs.get("NetworkSettings", {}).get("Networks") or {}
    ipam = (nets.get(net) or {}).get("IPAMConfig") or {}
    return ipam.get("IPv4Address") or (nets.get(net) or {}).get("IPAddress") or None


def _published_port(c: Container, label: str) -> int:
    """The 127.0.0.1 host port docker assigned to container port 22 (bounded re-read)."""
    for _ in range(50):
        c.reload()
        for b in (c.attrs.get("NetworkSettings", {}).get("Ports") or {}).get("22/tcp") or []:
            if b.get("HostIp") == "127.0.0.1" and b.get("HostPort"):
                return int(b["HostPort"])
        time.sleep(0.1)
    raise ProviderError(f"{label}: docker did not publish port 22 on 127.0.0.1")


def _inject(cname: str, plan: HostPlan, pubkey: str) -> bool:
    """Install the stage key for root and the login user with NOPASSWD sudo; True when changed."""
    r = run(["docker", "exec", "-i", cname, "sh", "-c", INJECT_SCRIPT, "inject", plan.user],
            stdin=pubkey + "\n", timeout=60)
    if r.returncode != 0:
        raise ProviderError(f"{plan.name}: injecting the stage key into {cname} failed (rc {r.returncode}): "
                            f"{r.stderr.strip()[-500:]}")
    return r.stdout.strip().endswith("changed")


# --- mirrored disks: a sparse file per hive on a loop device (loop devices are host-global) ---------

def mirrored_disk_sizes(site: Any, stage: str) -> dict[str, int]:
    """GB of the secondary disk per host: hives with hive_mirrored_disk_size, minus hive_no_mirrored_device."""
    inv = build_inventory(site, stage, None)
    sizes: dict[str, int] = {}
    for name, host in inv.hosts.items():
        size = host.get("hive_mirrored_disk_size", None)
        if size and not host.get("hive_no_mirrored_device", None):
            sizes[str(name)] = int(size)
    return sizes


def disk_file(context_dir: Path, plan: HostPlan) -> Path:
    """`<context>/disks/<short>.img`: destroy finds every disk of the stage by listing this directory."""
    return Path(context_dir) / DISK_DIR / f"{plan.short}.img"


def _losetup(args: list[str], label: str) -> str:
    """Run losetup (root on the controller); its failure is a provider error that names the host."""
    try:
        r = run(["losetup", *args], timeout=60)
    except OSError as e:
        raise ProviderError(f"{label}: losetup is not available on the controller: {e}") from e
    if r.returncode != 0:
        raise ProviderError(f"{label}: losetup {' '.join(args)} failed (rc {r.returncode}): {r.stderr.strip()}")
    return r.stdout.strip()


def loop_of(path: Path) -> str | None:
    """The loop device the file is attached to, if any (`losetup -j`), so a rebuild reuses it."""
    out = _losetup(["-n", "-O", "NAME", "-j", str(path)], str(path))
    names = out.split()
    return names[0] if names else None


def _ensure_disk_file(path: Path, size_gb: int, label: str, log: Log) -> list[str]:
    """Create (or grow) the sparse file; a smaller wanted size never shrinks a disk that may hold data."""
    want = size_gb * 1024**3
    path.parent.mkdir(mode=0o700, exist_ok=True)
    if not path.exists():
        with path.open("wb") as f:
            f.truncate(want)
        log(f"{label}: mirrored disk {path.name} created ({size_gb} GB sparse)")
        return ["disk_created"]
    have = path.stat().st_size
    if have < want:
        with path.open("r+b") as f:
            f.truncate(want)
        log(f"{label}: mirrored disk {path.name} grown to {size_gb} GB")
        return ["disk_grown"]
    if have > want:
        log(f"WARNING: {label}: mirrored disk {path.name} is larger than {size_gb} GB; it is never shrunk")
    return []


def ensure_disk(context_dir: Path, plan: HostPlan, size_gb: int, log: Log = nolog) -> tuple[str, list[str]]:
    """The hive's loop device (attached with partition scanning so parted can add partitions) and actions."""
    path = disk_file(context_dir, plan)
    acts = _ensure_disk_file(path, size_gb, plan.name, log)
    loop = loop_of(path)
    if loop is None:
        loop = _losetup(["--find", "--show", "-P", str(path)], plan.name)
        # The kernel may lack partition-table parsers: tell it about partitions an earlier run made.
        run(["partx", "-a", loop], timeout=60)
        log(f"{plan.name}: mirrored disk attached as {loop}")
        acts.append("disk_attached")
    elif "disk_grown" in acts:
        _losetup(["-c", loop], plan.name)
    return loop, acts


def _container_disk(c: Container) -> str | None:
    """The host device the container sees as /dev/vdb (None: no disk)."""
    for d in c.attrs.get("HostConfig", {}).get("Devices") or []:
        if d.get("PathInContainer") == DISK_DEVICE:
            return str(d.get("PathOnHost"))
    return None


def remove_disks(context_dir: Path, log: Log = nolog) -> int:
    """Detach every stage disk from its loop device(s) and delete the files; the number removed."""
    folder = Path(context_dir) / DISK_DIR
    if not folder.is_dir():
        return 0
    count = 0
    for path in sorted(folder.glob("*.img")):
        out = _losetup(["-n", "-O", "NAME", "-j", str(path)], str(path))
        for loop in out.split():
            _losetup(["-d", loop], str(path))
            log(f"detached {loop} ({path.name})")
        path.unlink()
        count += 1
    folder.rmdir()
    return count


def _stage_labels(sname: str, stage: str, stage_id: str, context_dir: Path) -> dict[str, str]:
    """Site and stage for people reading `docker ps`; the stage id and owner dir for ownership."""
    return {LABEL_SITE: sname, LABEL_STAGE: stage, **owner_labels(stage_id, context_dir)}


def _found(client: docker.DockerClient, net: str, cnames: list[str]) -> list[Resource]:
    """The network and containers that exist under the stage's names, whoever made them."""
    found: list[Resource] = []
    try:
        n = client.networks.get(net)
        found.append(Resource("network", net, str(n.id), n.attrs.get("Labels") or {}))
    except docker.errors.NotFound:
        pass
    for cname in cnames:
        try:
            c = client.containers.get(cname)
        except docker.errors.NotFound:
            continue
        found.append(Resource("container", cname, str(c.id), c.labels or {}))
    return found


def _stage_containers(client: docker.DockerClient, sname: str, stage: str) -> list[Container]:
    """Every container labelled with the site and stage (hosts since removed from the site too)."""
    labels = [f"{LABEL_SITE}={sname}", f"{LABEL_STAGE}={stage}"]
    return list(client.containers.list(all=True, filters={"label": labels}))


def _destroy_targets(client: docker.DockerClient, sname: str, stage: str,
                     net: str) -> tuple[list[Container], list[Resource]]:
    """What destroy removes: the stage-labelled containers and the network (as resources for the owner check)."""
    containers = _stage_containers(client, sname, stage)
    return containers, _found(client, net, []) + [Resource("container", str(c.name), str(c.id), c.labels or {})
                                                  for c in containers]


def _record_identity(context_dir: Path, state: dict[str, Any], stage_id: str, adopted: set[str], sname: str,
                     stage: str) -> dict[str, Any]:
    """Write the stage id (and adoptions) before anything carries its label, so a crash never orphans a container."""
    base = state or {"provider": "docker", "stage": stage, "site_name": sname, "hosts": {}}
    new = {**base, STATE_ID: stage_id}
    if adopted:
        new[STATE_ADOPTED] = sorted(adopted)
    if new != state:
        write_state(context_dir, new)
    return new


def _host_keys_inside(cname: str) -> set[str]:
    """The host's public keys read through `docker exec` (not over TCP), so the key we record is the container's."""
    r = run(["docker", "exec", cname, "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"], timeout=60)
    return {" ".join(ln.split()[:2]) for ln in r.stdout.splitlines() if len(ln.split()) >= 2}


def _short_names(plans: list[HostPlan], wanted: Any) -> set[str]:
    """Inventory names for --rekey values given as full or short names; unknown names are refused."""
    by_short = {p.short: p.name for p in plans}
    full = {p.name for p in plans}
    out: set[str] = set()
    for item in wanted or ():
        if item in full:
            out.add(item)
        elif item in by_short:
            out.add(by_short[item])
        else:
            raise ProviderError(f"--rekey {item}: not a host of this stage ({', '.join(sorted(full))})")
    return out


def preflight(site: Any, stage: str, context_dir: Path, *, destroy: bool = False, adopt: bool = False) -> None:
    """Check mode: raise NotOurs when build (or destroy) would refuse, touching nothing."""
    context_dir = Path(context_dir).absolute()
    sname, net = names(site, stage)
    client = _client()
    state = read_state(context_dir)
    if destroy:
        found = _destroy_targets(client, sname, stage, net)[1]
    else:
        found = _found(client, net, [container_name(sname, stage, p) for p in plan_hosts(site, stage)])
    refuse_foreign(found, stage_id_of(state), adopted_of(state), context_dir,
                   f"{'destroy' if destroy else 'build-infra'} {sname}/{stage}", adopt)


def build(site: Any, stage: str, context_dir: Path, log: Log = nolog, *, adopt: bool = False,
          rekey: Any = ()) -> dict[str, Any]:
    """Bring the stage's containers up (idempotent) and write state.json + known_hosts.

    Only containers and the network this stage created (its stage id in their labels) or adopted are touched;
    anything else under the stage's names is refused (NotOurs) before any change, unless `adopt`. A host whose
    key differs from the recorded one is refused unless named in `rekey`.
    """
    t0 = time.monotonic()
    context_dir = Path(context_dir).absolute()
    sname, net = names(site, stage)
    cidr = stage_cidr(site, stage)
    plans = plan_hosts(site, stage)
    rekeyed = _short_names(plans, rekey)
    disk_sizes = mirrored_disk_sizes(site, stage)
    client = _client()

    old_state = read_state(context_dir)
    stage_id = stage_id_of(old_state) or new_stage_id()
    adopted = adopted_of(old_state)
    taken = refuse_foreign(_found(client, net, [container_name(sname, stage, p) for p in plans]), stage_id,
                           adopted, context_dir, f"build-infra {sname}/{stage}", adopt)
    for res in taken:
        log(f"adopting {res.kind} {res.name} ({res.docker_id[:12]}): from now on this checkout owns it")
    adopted |= {res.docker_id for res in taken}
    context_dir = ensure_context_dir(context_dir)
    old_state = _record_identity(context_dir, old_state, stage_id, adopted, sname, stage)
    labels = _stage_labels(sname, stage, stage_id, context_dir)

    image = ensure_image(None, HOST_TAG, log=log)
    raise_inotify(log)

    changed = ensure_keypair(context_dir, f"hive-{sname}-{stage}", log)
    pubkey = public_key(context_dir)
    pkey = load_pkey(context_dir)
    changed |= _ensure_network(client, net, cidr, labels, log)

    def still_ours(res: Resource) -> None:
        """Re-checked right before use: another checkout may have created it since the first look."""
        refuse_foreign([res], stage_id, adopted, context_dir, f"build-infra {sname}/{stage}", False)

    still_ours(next(r for r in _found(client, net, []) if r.kind == "network"))

    old_hosts: dict[str, Any] = old_state.get("hosts") or {}
    actions: dict[str, list[str]] = {}
    containers: dict[str, Container] = {}
    disks: dict[str, dict[str, str]] = {}
    for plan in plans:
        cname = container_name(sname, stage, plan)
        acts: list[str] = []
        disk: str | None = None
        if plan.name in disk_sizes:
            disk, disk_acts = ensure_disk(context_dir, plan, disk_sizes[plan.name], log)
            disks[plan.name] = {"file": str(disk_file(context_dir, plan)), "loop": disk}
            acts += disk_acts
        try:
            c: Container | None = client.containers.get(cname)
        except docker.errors.NotFound:
            c = None
        if c is not None:
            still_ours(Resource("container", cname, str(c.id), c.labels or {}))
        if c is not None and _container_ip(c, net) != plan.private_ip:
            log(f"{plan.name}: container {cname} has address {_container_ip(c, net)}, "
                f"want {plan.private_ip}: recreating")
            c.remove(force=True, v=True)
            c = None
            acts.append("removed")
        if c is not None and _container_disk(c) != disk:
            log(f"{plan.name}: container {cname} has {_container_disk(c)} as {DISK_DEVICE}, want {disk}: recreating")
            c.remove(force=True, v=True)
            c = None
            acts.append("removed")
        if c is None:
            c = _create(client, image, cname, net, plan, labels, disk)
            acts.append("created")
        if c.status != "running":
            try:
                c.start()
            except docker.errors.APIError as e:
                raise ProviderError(f"{plan.name}: cannot start {cname}: {e.explanation or e}") from e
            acts.append("started")
        containers[plan.name] = c
        actions[plan.name] = acts

    hosts: dict[str, Any] = {}
    kh_path = context_dir / "known_hosts"
    kh_set: dict[str, str] = {}
    kh_drop: list[str] = []
    problems: list[str] = []
    deadline = time.monotonic() + SSH_WAIT_S
    for plan in plans:
        c = containers[plan.name]
        cname = container_name(sname, stage, plan)
        port = _published_port(c, plan.name)
        if _inject(cname, plan, pubkey):
            actions[plan.name].append("key_injected")
        seen = wait_for_ssh("127.0.0.1", port, plan.user, pkey, deadline, plan.name)
        pattern = known_hosts_name("127.0.0.1", port)
        if seen not in _host_keys_inside(cname):
            raise ProviderError(f"{plan.name}: 127.0.0.1:{port} shows host key {key_fingerprint(seen)}, which is "
                                f"not one of {cname}'s own keys: something else answers on its port")
        prev = old_hosts.get(plan.name) or {}
        old_pattern = known_hosts_name(str(prev.get("address", "127.0.0.1")), int(prev["port"])) \
            if prev.get("port") else None
        recorded = None if "created" in actions[plan.name] else (
            prev.get("host_key") or (known_host_key(kh_path, old_pattern) if old_pattern else None))
        key, action, problem = judge_host_key(plan.name, pattern, recorded, seen, kh_path, rekeyed)
        if action == "rekeyed":
            log(f"{plan.name}: host key replaced as asked (--rekey): {key_fingerprint(str(recorded))} -> "
                f"{key_fingerprint(seen)}")
            actions[plan.name].append("rekeyed")
        if problem:
            problems.append(problem)
        kh_set[pattern] = key
        if old_pattern and old_pattern != pattern:
            kh_drop.append(old_pattern)
        hosts[plan.name] = {"address": "127.0.0.1", "port": port, "user": plan.user,
                            "private_ip": plan.private_ip, "container": cname, "host_key": key}

    for name in sorted(set(old_hosts) - set(hosts)):
        log(f"WARNING: {name} is no longer in the site; its container stays until `destroy`")
    kh_changed = update_known_hosts(kh_path, kh_set, kh_drop)
    live = {str(c.id) for c in containers.values()} | {res.docker_id for res in _found(client, net, [])}
    state: dict[str, Any] = {"provider": "docker", "stage": stage, "site_name": sname, STATE_ID: stage_id,
                             "ssh_key": "id_ed25519", "network": {"name": net, "cidr": cidr}, "hosts": hosts}
    if adopted & live:
        state[STATE_ADOPTED] = sorted(adopted & live)
    if disks:
        state["disks"] = disks
    st_changed = write_state(context_dir, state)
    changed = changed or kh_changed or st_changed or any(actions.values())
    elapsed = time.monotonic() - t0
    for name, acts in actions.items():
        log(f"{name}: {', '.join(acts) if acts else 'unchanged'} (127.0.0.1:{hosts[name]['port']})")
    for p in problems:
        log(p)
    log(f"build-infra docker {sname}/{stage}: {len(hosts)} hosts, "
        f"{'changed' if changed else 'no change'}, {len(problems)} refused, {elapsed:.1f} s")
    if problems:
        raise ProviderError("\n".join(problems))
    return {"changed": changed, "hosts": actions,
            "state": state, "elapsed_s": round(elapsed, 2)}


def destroy(site: Any, stage: str, context_dir: Path, log: Log = nolog, *, adopt: bool = False) -> None:
    """Remove the stage's containers (with volumes), network and disks, and forget them in state/known_hosts.

    Whatever this stage did not create (or adopt) is refused before anything is removed, unless `adopt`.
    """
    context_dir = Path(context_dir).absolute()
    sname, net = names(site, stage)
    client = _client()
    state = read_state(context_dir)
    found_containers, found = _destroy_targets(client, sname, stage, net)
    refuse_foreign(found, stage_id_of(state), adopted_of(state), context_dir, f"destroy {sname}/{stage}", adopt)
    for c in found_containers:
        c.remove(force=True, v=True)
        log(f"removed container {c.name}")
    try:
        client.networks.get(net).remove()
        log(f"removed network {net}")
    except docker.errors.NotFound:
        pass
    disks = remove_disks(context_dir, log)
    if state:
        drop = [known_hosts_name(str(h.get("address", "127.0.0.1")), int(h["port"]))
                for h in (state.get("hosts") or {}).values() if h.get("port")]
        if (context_dir / "known_hosts").exists():
            update_known_hosts(context_dir / "known_hosts", {}, drop)
        state["hosts"] = {}
        state.pop(STATE_ADOPTED, None)
        state.pop("disks", None)
        write_state(context_dir, state)
    log(f"destroy docker {sname}/{stage}: {len(found_containers)} containers and {disks} mirrored disks removed")
