"""Benchmark: hundreds of hosts from one controller: a no-change run on N simulated hosts beside the floor script.

    flock /tmp/hn-lab.lock .venv/bin/python benchmarks/bench_scale.py [--hosts 200] [--per-container 50] [--repeat 3]

A simulated host is its own sshd (own port, own process, same host keys) inside one of a few lab containers; each
is published on 127.0.0.1 only, and the site is a `prepared` stage of N hosts whose host_vars give each its port, so
build-infra, the inventory, the transport and the engine are the product's own. Each host's workload has its own
paths (the hosts of one container share a filesystem): a directory, two files, a managed block in a file, a package
and a service check. First the cold run, then `--repeat` no-change runs; beside them the floor, one idempotent shell
script per host with the same checks over one paramiko channel (TCP_NODELAY), as many in parallel as the engine's
workers. Reported: wall time, the controller's CPU, peak RSS, peak threads and open file descriptors.

Containers and the network carry the label hive_nornir.bench=<run id>; only those are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import paramiko

from hive_nornir.api import Hive
from hive_nornir.engine.context import HostContext
from hive_nornir.engine.outcome import FAILED, UNREACHABLE
from hive_nornir.infra import build_infra
from hive_nornir.lab.build import ensure_image
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.file import File
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.primitives.lines import BlockInFile
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.service import Service
from hive_nornir.providers.common import KEY_NAME, ensure_keypair, public_key
from hive_nornir.providers.docker import INJECT_SCRIPT, _host_config

SITE = "scale"
CIDR = "10.215.0.0/24"  # the prepared stage's private addresses (never dialled: every host is 127.0.0.1:PORT)
NET_CIDR = "10.216.0.0/24"  # the containers' own docker network
FIRST_PORT = 2200
LABEL = "hive_nornir.bench"


@dataclass
class Peaks:
    """Sampled every 50 ms while a run is going: the controller's threads and open file descriptors."""

    threads: int = 0
    fds: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        """Until stopped; bounded by the run itself (stop() is called in a finally)."""
        while not self._stop.wait(0.05):
            self.threads = max(self.threads, threading.active_count())
            self.fds = max(self.fds, sum(1 for _ in Path("/proc/self/fd").iterdir()))

    @contextmanager
    def watching(self) -> Iterator[Peaks]:
        """Sample in a thread of its own for the duration of the block."""
        self._stop.clear()
        t = threading.Thread(target=self.sample, daemon=True)
        t.start()
        try:
            yield self
        finally:
            self._stop.set()
            t.join(5)


def measured(fn: Callable[[], Any]) -> dict[str, float]:
    """Wall and controller CPU seconds of fn, with the peak threads and fds seen while it ran."""
    peaks = Peaks()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    with peaks.watching():
        fn()
    wall = time.monotonic() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {"wall": wall, "cpu": cpu, "threads": peaks.threads, "fds": peaks.fds}


# --- the simulated hosts -------------------------------------------------------------------------------------

def short(i: int) -> str:
    """The short host name hive-builder's naming gives the i-th server of a staging stage."""
    return f"s-hive{i}"


def workload(name: str) -> list[Primitive]:
    """One host's share: its own paths, so the hosts that share a container never touch the same file."""
    base = f"/srv/scale/{name}"
    return [
        Directory(base, mode="0755"),
        File(f"{base}/motd", f"managed by hive_nornir for {name}\n"),
        File(f"{base}/app.conf", f"name = {name}\nworkers = 4\n", mode="0640"),
        BlockInFile(f"{base}/hosts", block=f"10.215.0.4 {name}\n", marker="# {mark} hive_nornir scale"),
        Packages(["openssh-server"]),
        Service("ssh", state="started"),
    ]


def floor_script(name: str) -> str:
    """The same end state as workload(), as one idempotent shell script (the physical floor of one exec)."""
    base = shlex.quote(f"/srv/scale/{name}")
    motd = shlex.quote(f"managed by hive_nornir for {name}")
    conf = shlex.quote(f"name = {name}\nworkers = 4")
    block = shlex.quote(f"# BEGIN hive_nornir scale\n10.215.0.4 {name}\n# END hive_nornir scale")
    return f"""set -e
[ -d {base} ] || install -d -m 0755 {base}
[ "$(cat {base}/motd 2>/dev/null)" = {motd} ] || printf '%s\\n' {motd} > {base}/motd
conf={base}/app.conf
[ "$(cat "$conf" 2>/dev/null)" = {conf} ] || {{ printf '%s\\n' {conf} > "$conf"; chmod 0640 "$conf"; }}
grep -qxF '10.215.0.4 {name}' {base}/hosts 2>/dev/null || printf '%s\\n' {block} >> {base}/hosts
dpkg-query -W -f '${{Status}}' openssh-server | grep -q 'install ok installed'
systemctl is-active -q ssh
"""


class SimLab:
    """A few lab containers, each running many sshd on their own ports, published on 127.0.0.1 only."""

    def __init__(self, hosts: int, per_container: int, run_id: str) -> None:
        self.hosts, self.per, self.run_id = hosts, per_container, run_id
        self.client = docker.from_env()
        self.network: Any = None
        self.containers: list[Any] = []
        self.ports: dict[int, int] = {}  # host index -> 127.0.0.1 port

    def up(self, pubkey: str, log: Callable[[str], None]) -> None:
        """Network, containers, the stage key for root and admin, then the extra sshd of each container."""
        image = ensure_image(log=log)
        labels = {LABEL: self.run_id}
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=NET_CIDR)])
        self.network = self.client.networks.create(f"hn-bench-scale-{self.run_id}", driver="bridge", ipam=ipam,
                                                   labels=labels)
        count = -(-self.hosts // self.per)
        for c in range(count):
            first = c * self.per
            indices = list(range(first, min(first + self.per, self.hosts)))
            ports = [FIRST_PORT + i - first for i in indices]
            hc = _host_config(self.client)
            hc["PortBindings"] = {f"{p}/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}] for p in ports}
            res = self.client.api.create_container(
                image, name=f"hn-bench-scale-{self.run_id}-{c}", hostname=f"scale{c}", detach=True,
                ports=ports, labels=labels, host_config=hc,
                networking_config=self.client.api.create_networking_config({self.network.name: {}}))
            container = self.client.containers.get(res["Id"])
            self.containers.append(container)
            container.start()
            self._wait_running(container)
            self._exec(container, ["sh", "-c", INJECT_SCRIPT, "inject", "admin"], stdin=pubkey + "\n")
            starts = "; ".join(f"/usr/sbin/sshd -p {p} -o PidFile=/run/sshd-scale-{p}.pid" for p in ports)
            self._exec(container, ["sh", "-c", f"install -d -m 0755 /run/sshd; {starts}"])
            container.reload()
            bound = container.attrs["NetworkSettings"]["Ports"]
            for i, p in zip(indices, ports, strict=True):
                self.ports[i] = int(bound[f"{p}/tcp"][0]["HostPort"])
            log(f"container {c}: {len(ports)} sshd on 127.0.0.1:{self.ports[indices[0]]}..")
        for i, port in self.ports.items():
            self._wait_banner(i, port)

    def _wait_running(self, container: Any) -> None:
        """systemd up and ssh.service active, bounded (60 x 0.5 s)."""
        for _ in range(60):
            r = subprocess.run(["docker", "exec", container.id, "systemctl", "is-active", "ssh"],
                               capture_output=True, text=True, timeout=30)
            if r.stdout.strip() == "active":
                return
            time.sleep(0.5)
        raise SystemExit(f"{container.name}: ssh.service did not become active")

    @staticmethod
    def _exec(container: Any, argv: list[str], stdin: str | None = None) -> None:
        r = subprocess.run(["docker", "exec", "-i", container.id, *argv], input=stdin, capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit(f"{container.name}: {argv[0]} failed: {r.stderr.strip()[-400:]}")

    @staticmethod
    def _wait_banner(i: int, port: int) -> None:
        """Each sshd answers with its banner, bounded (100 x 0.1 s)."""
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    if s.recv(8).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{short(i)}: no sshd banner on 127.0.0.1:{port}")

    def down(self) -> None:
        """Remove exactly the containers and the network this run created (found by our label)."""
        for c in self.client.containers.list(all=True, filters={"label": f"{LABEL}={self.run_id}"}):
            c.remove(force=True, v=True)
        for n in self.client.networks.list(filters={"label": f"{LABEL}={self.run_id}"}):
            n.remove()


def write_site(root: Path, lab: SimLab) -> None:
    """A prepared stage of N hosts; host_vars point each at its sshd (127.0.0.1:PORT, user admin)."""
    inv = root / "inventory"
    (inv / "host_vars").mkdir(parents=True)
    (inv / "hive.yml").write_text(f"""plugin: hive_inventory
name: {SITE}
stages:
  staging:
    provider: prepared
    separate_repository: false
    cidr: {CIDR}
    number_of_hosts: {lab.hosts}
""")
    for i, port in lab.ports.items():
        (inv / "host_vars" / f"{short(i)}.{SITE}.yml").write_text(
            f"ansible_host: 127.0.0.1\nansible_port: {port}\nansible_user: admin\n")


# --- the floor -----------------------------------------------------------------------------------------------

def floor_one(port: int, key: paramiko.PKey, known_hosts: Path, name: str) -> None:
    """Connect (host key as build-infra recorded it), run the host's script on one exec channel under sudo."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect("127.0.0.1", port=port, username="admin", pkey=key, sock=sock, allow_agent=False,
                       look_for_keys=False, timeout=10)
        chan = client.get_transport().open_session()  # type: ignore[union-attr]
        chan.exec_command("sudo -n sh -s")
        chan.sendall(floor_script(name).encode())
        chan.shutdown_write()
        status = chan.recv_exit_status()
        if status != 0:
            raise SystemExit(f"floor script failed on {name}: {chan.makefile_stderr().read()[-300:]!r}")
    finally:
        client.close()


def floor_run(lab: SimLab, key: paramiko.PKey, known_hosts: Path, workers: int) -> None:
    """Every host's script, `workers` at a time (the engine's worker count, for a fair comparison)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda i: floor_one(lab.ports[i], key, known_hosts, f"{short(i)}.{SITE}"), sorted(lab.ports)))


# --- main ----------------------------------------------------------------------------------------------------

def main() -> None:
    """Print the table for the README."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--per-container", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=20, help="the engine's num_workers (Hive's default: 20)")
    args = ap.parse_args()
    run_id = f"{os.getpid():x}"
    root = Path(tempfile.mkdtemp(prefix="hn-bench-scale-"))
    context = root / ".hive" / "staging"
    context.mkdir(parents=True)

    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr)

    lab = SimLab(args.hosts, args.per_container, run_id)
    try:
        ensure_keypair(context, f"hive-{SITE}-staging")
        t0 = time.monotonic()
        lab.up(public_key(context), log)
        log(f"{args.hosts} sshd up in {time.monotonic() - t0:.1f} s")
        write_site(root, lab)
        hive = Hive(root=root, stage="staging", num_workers=args.workers)
        build = measured(lambda: build_infra(hive))
        log(f"build-infra (prepared, host keys of {args.hosts} hosts) {build['wall']:.1f} s")

        def task(ctx: HostContext) -> None:
            ctx.ensure(workload(ctx.name))

        reports: list[Any] = []
        cold = measured(lambda: reports.append(hive.run_task(task, name="scale")))
        first = reports[-1]
        failed = [o for o in first.outcomes if o.status in (FAILED, UNREACHABLE)]
        if failed:
            raise SystemExit(f"cold run: {len(failed)} hosts failed, e.g. {failed[0].host}: {failed[0].error}")
        warm = []
        for _ in range(args.repeat):
            warm.append(measured(lambda: reports.append(hive.run_task(task, name="scale"))))
            changes = sum(len(o.changes) for o in reports[-1].outcomes)
            if changes:
                raise SystemExit(f"a no-change run changed {changes} things")
        trips = statistics.median(o.round_trips for o in reports[-1].outcomes)
        key = paramiko.Ed25519Key.from_private_key_file(str(context / KEY_NAME))
        known = context / "known_hosts"
        floors = [measured(lambda: floor_run(lab, key, known, args.workers)) for _ in range(args.repeat)]
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        lab.down()
    med = {k: statistics.median(r[k] for r in warm) for k in ("wall", "cpu", "threads", "fds")}
    fl = {k: statistics.median(r[k] for r in floors) for k in ("wall", "cpu", "threads", "fds")}
    n = args.hosts
    print(f"\n{n} hosts in {len(lab.containers)} containers, {args.workers} workers, load "
          f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} cores\n")
    print("| run | wall | controller CPU | CPU per host | peak threads | peak fds | round trips per host |")
    print("|---|---|---|---|---|---|---|")
    print(f"| cold (first) run | {cold['wall']:.1f} s | {cold['cpu']:.1f} s | {cold['cpu'] / n * 1000:.0f} ms | "
          f"{cold['threads']} | {cold['fds']} | |")
    print(f"| no-change run (median of {args.repeat}) | {med['wall']:.1f} s | {med['cpu']:.1f} s | "
          f"{med['cpu'] / n * 1000:.0f} ms | {med['threads']:.0f} | {med['fds']:.0f} | {trips:.0f} |")
    print(f"| floor: one script per host (median of {args.repeat}) | {fl['wall']:.1f} s | {fl['cpu']:.1f} s | "
          f"{fl['cpu'] / n * 1000:.0f} ms | {fl['threads']:.0f} | {fl['fds']:.0f} | 1 |")
    print(f"\nno-change / floor: {med['wall'] / fl['wall']:.2f}x wall; controller peak RSS {peak_rss:.0f} MiB; "
          f"build-infra {build['wall']:.1f} s")


if __name__ == "__main__":
    main()
