"""Session lab: a 4-host docker stage built by the real provider, reached only via 127.0.0.1 ports."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
import pytest

LAB_SITE = """\
plugin: hive_inventory
name: {name}
stages:
  {stage}:
    provider: docker
    separate_repository: {separate}
    cidr: {cidr}
    number_of_hosts: {n}
"""


def write_site(root: Path, name: str, cidr: str, n: int, separate: bool = True,
               stage: str = "private", stage_extra: str = "", group_vars: str = "") -> Path:
    """Write a minimal hive-builder site (plus extra stage keys and group_vars/all.yml) under <root>/inventory."""
    inv = root / "inventory"
    inv.mkdir(parents=True, exist_ok=True)
    path = inv / "hive.yml"
    extra = "".join(f"    {line}\n" for line in stage_extra.splitlines() if line.strip())
    path.write_text(LAB_SITE.format(name=name, stage=stage, cidr=cidr, n=n, separate=str(separate)) + extra)
    if group_vars:
        (inv / "group_vars").mkdir(exist_ok=True)
        (inv / "group_vars" / "all.yml").write_text(group_vars)
    return path


def load_test_site(path: Path) -> Any:
    """Load the written site with the product's loader, so the lab checks the same path users take."""
    from hive_nornir.site import load_site

    return load_site(path)


def lab_log(msg: str) -> None:
    """Provider progress into the captured test output (shown with -s or on failure)."""
    print(f"{time.strftime('%H:%M:%S')} {msg}")


def cannot_start(reason: str) -> None:
    """CI must prove the lab works: fail there; elsewhere skip with the reason."""
    if os.environ.get("CI"):
        pytest.fail(f"lab cannot start (CI is set, so this fails): {reason}", pytrace=False)
    pytest.skip(f"lab cannot start: {reason}")


@dataclass
class Lab:
    """A built stage: paths, state.json and helpers to look at the hosts."""

    root: Path
    site_path: Path
    site: Any
    stage: str
    context_dir: Path
    state: dict[str, Any]
    build_result: dict[str, Any]
    build_seconds: float
    provider: Any = field(repr=False)

    @property
    def hosts(self) -> list[str]:
        """Inventory host names, e.g. p-hive0.labtest."""
        return list(self.state["hosts"])

    @property
    def key_file(self) -> Path:
        """The stage private key."""
        return self.context_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        """The stage known_hosts file."""
        return self.context_dir / "known_hosts"

    def _entry(self, host: str) -> dict[str, Any]:
        """state.json entry by inventory name or short name."""
        hosts = self.state["hosts"]
        if host in hosts:
            return dict(hosts[host])
        for name, h in hosts.items():
            if name.split(".", 1)[0] == host:
                return dict(h)
        raise KeyError(f"{host} is not a lab host ({', '.join(hosts)})")

    def ssh_port(self, host: str) -> int:
        """The 127.0.0.1 port that reaches the host's sshd."""
        return int(self._entry(host)["port"])

    def container(self, host: str) -> str:
        """The docker container name of a host."""
        return str(self._entry(host)["container"])

    def docker_exec(self, host: str, cmd: str, timeout: float = 120) -> tuple[int, str]:
        """Observe inside a host (not the product's path): rc and stdout+stderr."""
        r = subprocess.run(["docker", "exec", self.container(host), "sh", "-c", cmd],
                           capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout + r.stderr

    def ssh(self, host: str, user: str | None = None) -> paramiko.SSHClient:
        """A paramiko client to the host via 127.0.0.1 that trusts only the stage known_hosts."""
        e = self._entry(host)
        c = paramiko.SSHClient()
        c.load_host_keys(str(self.known_hosts))
        c.set_missing_host_key_policy(paramiko.RejectPolicy())
        c.connect("127.0.0.1", port=int(e["port"]), username=user or e["user"],
                  key_filename=str(self.key_file), allow_agent=False, look_for_keys=False,
                  timeout=10, banner_timeout=10, auth_timeout=10)
        return c

    def rebuild(self, log: Callable[[str], None] = lab_log) -> dict[str, Any]:
        """Run the provider's build again (idempotency checks)."""
        res: dict[str, Any] = self.provider.build(self.site, self.stage, self.context_dir, log)
        self.state = res["state"]
        return res


def prepared_copy(lab: Lab, root: Path, host_vars: dict[str, str]) -> tuple[Any, Path]:
    """The lab's site as a `prepared` stage under root (host_vars text per host, the stage key copied):
    (site, context dir) for the prepared provider to reach the same hosts."""
    inv = root / "inventory"
    (inv / "host_vars").mkdir(parents=True)
    (inv / "hive.yml").write_text(lab.site_path.read_text().replace("provider: docker", "provider: prepared"))
    for host, text in host_vars.items():
        (inv / "host_vars" / f"{host}.yml").write_text(text)
    ctx = root / ".hive" / lab.stage
    ctx.mkdir(parents=True)
    for f in ("id_ed25519", "id_ed25519.pub"):
        shutil.copy2(lab.context_dir / f, ctx / f)
    return load_test_site(inv / "hive.yml"), ctx


def start_lab(root: Path, name: str, cidr: str, n: int, separate: bool = True,
              stage: str = "private", stage_extra: str = "", group_vars: str = "") -> Lab:
    """Write a site and build it with the docker provider; cannot_start() when that is impossible."""
    try:
        from hive_nornir.providers import get_provider

        provider = get_provider("docker")
        site_path = write_site(root, name, cidr, n, separate, stage, stage_extra, group_vars)
        site = load_test_site(site_path)
    except Exception as e:
        cannot_start(f"{type(e).__name__}: {e}")
        raise
    context_dir = root / ".hive" / stage
    t0 = time.monotonic()
    try:
        # adopt: containers a killed earlier session of this test suite left under the same names are its own
        res = provider.build(site, stage, context_dir, lab_log, adopt=True)
    except Exception as e:
        try:
            provider.destroy(site, stage, context_dir, lab_log, adopt=True)
        except Exception as e2:  # noqa: BLE001 - the build error below is the one to report
            lab_log(f"cleanup after failed build also failed: {e2}")
        cannot_start(f"{type(e).__name__}: {e}")
        raise
    secs = time.monotonic() - t0
    lab_log(f"lab {name}/{stage}: {n} hosts up in {secs:.1f} s")
    return Lab(root=root, site_path=site_path, site=site, stage=stage, context_dir=context_dir,
               state=res["state"], build_result=res, build_seconds=secs, provider=provider)


@contextmanager
def own_lab(root: Path, name: str, cidr: str, n: int, **kw: Any) -> Iterator[Lab]:
    """start_lab for a module's own lab fixture, destroyed (stop_lab) when the fixture ends."""
    lab = start_lab(root, name, cidr, n, **kw)
    try:
        yield lab
    finally:
        stop_lab(lab)


def stop_lab(lab: Lab) -> None:
    """Destroy the lab unless HIVE_KEEP_LAB=1 asks to keep it for inspection."""
    if os.environ.get("HIVE_KEEP_LAB") == "1":
        lab_log(f"HIVE_KEEP_LAB=1: keeping lab at {lab.root}")
        return
    lab.provider.destroy(lab.site, lab.stage, lab.context_dir, lab_log)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The shared 4-host stage (3 hives + repository) of site `labtest`, 10.78.0.0/24."""
    with own_lab(tmp_path_factory.mktemp("labtest"), "labtest", "10.78.0.0/24", 4, separate=True) as lab:
        yield lab


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[Callable[..., Lab]]:
    """Build extra small labs in a test; whatever the test leaves up is destroyed afterwards."""
    made: list[Lab] = []

    def make(name: str, cidr: str, n: int, separate: bool = True, stage: str = "private",
             stage_extra: str = "", group_vars: str = "") -> Lab:
        """stage_extra: YAML lines added to the stage (e.g. "internal_cidr: 172.31.252.0/22");
        group_vars: the text of inventory/group_vars/all.yml."""
        made.append(start_lab(tmp_path / name, name, cidr, n, separate, stage, stage_extra, group_vars))
        return made[-1]

    yield make
    for one in made:
        one.provider.destroy(one.site, one.stage, one.context_dir, lab_log)
