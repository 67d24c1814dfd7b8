"""Phases and providers come from entry points: a third-party distribution on sys.path plugs in with no code here.

The third party is a real (tiny) installed distribution: a package and its .dist-info with entry_points.txt in a
directory on PYTHONPATH, found by importlib.metadata exactly as `pip install` would leave it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hive_nornir import registry
from hive_nornir.engine.runbook import Runbook
from hive_nornir.phases import load_runbook, phase_names
from hive_nornir.providers import ProviderNotSupported, get_provider, supported_providers
from hive_nornir.registry import PluginError

HOSTS = ("p-hive0.hivelab", "p-hive1.hivelab", "p-hive2.hivelab", "p-hive3.hivelab")

HELLO = '''\
from hive_nornir.engine.context import HostContext
from hive_nornir.engine.runbook import Runbook, Step


def hello(ctx: HostContext) -> None:
    """Records a change without touching the host (a task connects only when it uses the session)."""
    ctx.changed("hello", f"hello from {ctx.name}, a {ctx.var('hive_name')} server")


RUNBOOK = Runbook("hello", (Step("hello", hello, groups=("hives",), tags=("greet",)),))
NOT_A_RUNBOOK = 42
'''


def third_party(tmp_path: Path, entry_points: str, name: str = "hn-hello") -> Path:
    """A directory holding an installed distribution (package + dist-info), to put on PYTHONPATH."""
    site = tmp_path / "site-packages"
    (site / "hn_hello").mkdir(parents=True)
    (site / "hn_hello" / "__init__.py").write_text(HELLO)
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    return site


def cli(root: Path, site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "hive_nornir", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)


def lab_state(root: Path) -> None:
    """The embedded lab site's docker stage as recorded; port 9 is never dialled by the phase below."""
    ctx = root / ".hive" / "private"
    ctx.mkdir(parents=True)
    (ctx / "state.json").write_text(json.dumps(
        {"provider": "docker", "hosts": {h: {"address": "127.0.0.1", "port": 9, "user": "root"} for h in HOSTS}}))


def test_builtin_phases_and_providers_are_entry_points() -> None:
    assert phase_names()[:2] == ["build-infra", "setup-hosts"]
    assert isinstance(load_runbook("setup-hosts"), Runbook)
    assert supported_providers() == ["docker", "prepared"]
    assert callable(get_provider("prepared").build)
    own = registry.plugins(registry.PHASE_GROUP)["setup-hosts"]
    assert [p.dist.replace("-", "_") for p in own] == ["hive_nornir"]


def test_unknown_phase_and_provider_name_what_is_available() -> None:
    with pytest.raises(PluginError, match=r"unknown phase 'setup-host' \(did you mean 'setup-hosts'\?\); "
                                          r"available: build-networks, build-volumes, cluster, deploy-services, "
                                          r"setup-hosts, vip-failover "
                                          r"\(entry point group hive_nornir.phases\)"):
        load_runbook("setup-host")
    with pytest.raises(ProviderNotSupported, match="provider 'aws' is not supported yet by build-infra "
                                                   r"\(hive-builder supports it.*supported: docker, prepared"):
        get_provider("aws")


def test_missing_own_entry_points_say_to_reinstall(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout whose metadata predates the entry points (pip install -e not re-run) is told so."""
    monkeypatch.setattr(registry.metadata, "entry_points", lambda group: [])
    with pytest.raises(PluginError, match=r"hive_nornir's own hive_nornir\.phases entry points are missing: "
                                          r"reinstall it"):
        load_runbook("setup-hosts")
    assert supported_providers() == []


def test_third_party_phase_runs_from_the_cli(tmp_path: Path) -> None:
    site = third_party(tmp_path, "[hive_nornir.phases]\nhello = hn_hello:RUNBOOK\n")
    root = tmp_path / "project"
    root.mkdir()
    lab_state(root)
    helped = cli(root, site, "run", "--help")
    phases = "{build-infra,setup-hosts,build-volumes,build-networks,deploy-services,cluster,hello,vip-failover}"
    assert phases in " ".join(helped.stdout.split()), helped.stdout
    proc = cli(root, site, "run", "hello", "-l", "p-hive0,p-hive3", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["phase"] == "hello" and [s["step"] for s in doc["steps"]] == ["hello"]
    changes = {(o["host"], c["ident"], c["summary"]) for o in doc["steps"] for c in o["changes"]}
    # -l keeps p-hive3, but the step runs on hives only and p-hive3 is the repository
    assert {h["host"] for h in doc["hosts"]} == {"p-hive0.hivelab"}, doc["hosts"]
    assert changes == {("p-hive0.hivelab", "hello", "hello from p-hive0.hivelab, a hivelab server")}, doc
    listed = cli(root, site, "run", "hello", "--list-steps")
    assert listed.returncode == 0 and "hello" in listed.stdout and "greet" in listed.stdout, listed.stderr


def test_broken_and_ambiguous_third_party_entries_are_bad_input(tmp_path: Path) -> None:
    site = third_party(tmp_path, "[hive_nornir.phases]\nbroken = hn_missing:RUNBOOK\nnumber = hn_hello:NOT_A_RUNBOOK\n"
                                 "setup-hosts = hn_hello:RUNBOOK\n\n[hive_nornir.providers]\nnoop = hn_hello\n")
    root = tmp_path / "project"
    root.mkdir()
    lab_state(root)
    broken = cli(root, site, "run", "broken")
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert ("error: hive_nornir.phases entry point 'broken' of hn-hello (hn_missing:RUNBOOK) does not load: "
            "ModuleNotFoundError: No module named 'hn_missing'") in broken.stderr, broken.stderr
    number = cli(root, site, "run", "number")
    assert number.returncode == 2 and "phase 'number' of hn-hello (hn_hello:NOT_A_RUNBOOK) is not a Runbook (got int)" \
        in number.stderr, number.stderr
    twice = cli(root, site, "run", "setup-hosts", "-C")
    assert twice.returncode == 2 and "phase 'setup-hosts' is registered by more than one distribution: " in twice.stderr
    assert "hn-hello (hn_hello:RUNBOOK)" in twice.stderr
    assert "(hive_nornir.runbooks.setup_hosts:RUNBOOK)" in twice.stderr
    providers = subprocess.run(
        [sys.executable, "-c", "from hive_nornir.providers import supported_providers, get_provider as g\n"
                               "print(supported_providers())\ng('noop')"],
        env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=60)
    assert providers.stdout.strip() == "['docker', 'noop', 'prepared']", providers.stderr
    assert "PluginError: provider 'noop' of hn-hello (hn_hello) has no build or destroy" in providers.stderr
