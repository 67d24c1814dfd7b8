"""Empty selections and unsupported providers are bad input (issue 10 item 12, issue 11 item 12): exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hive_nornir.api import Hive
from hive_nornir.engine.errors import BadInput
from hive_nornir.providers import ProviderNotSupported, get_provider
from hive_nornir.registry import supported_providers
from hive_nornir.site import SiteError, load_site

# provider prepared: no lab state needed, so the run gets as far as the selection (and no host exists at
# 10.98.0.x: a run that wrongly went on would fail with exit 3/4, not 2)
PREPARED = ("plugin: hive_inventory\nname: t\nstages:\n  private:\n    provider: prepared\n"
            "    cidr: 10.98.0.0/24\n")


def project(tmp_path: Path, text: str = PREPARED) -> Path:
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hive.yml").write_text(text)
    return tmp_path


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hive_nornir", "-r", str(root), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("flag, value, text", [
    ("-T", "", "-T/--tags: empty selection"),
    ("-T", ",", "-T/--tags: empty selection"),
    ("-T", " , ", "-T/--tags: empty selection"),
    ("-l", "", "-l/--limit: empty selection ''"),
    ("-l", ",", "-l/--limit: empty selection ','"),
])
def test_empty_selection_is_bad_input(tmp_path: Path, flag: str, value: str, text: str) -> None:
    root = project(tmp_path)
    done = cli(root, "run", "setup-hosts", flag, value, "--json", str(tmp_path / "r.json"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert text in done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["exit_code"] == 2 and text in report["error"] and report["steps"] == []
    assert not (root / ".hive" / "private" / "journal.json").exists()  # nothing started


def test_empty_selection_in_the_api(tmp_path: Path) -> None:
    hive = Hive(root=project(tmp_path))
    with pytest.raises(BadInput, match="empty selection"):
        hive.run("setup-hosts", tags=[])
    with pytest.raises(BadInput, match="empty selection"):
        hive.run("setup-hosts", limit="")
    with pytest.raises(BadInput, match="empty selection"):
        hive.run("setup-hosts", limit=[])


def test_facts_with_an_empty_limit_is_bad_input(tmp_path: Path) -> None:
    done = cli(project(tmp_path), "facts", "-l", "")
    assert done.returncode == 2 and "-l/--limit: empty selection" in done.stderr


def test_provider_list_comes_from_the_registry() -> None:
    assert "docker" in supported_providers() and "prepared" in supported_providers()
    with pytest.raises(ProviderNotSupported) as info:
        get_provider("openstack")
    assert isinstance(info.value, BadInput)
    assert f"supported: {', '.join(supported_providers())}" in str(info.value)


@pytest.mark.parametrize("provider", ["openstack", "aws", "vagrant"])
def test_build_infra_with_a_provider_it_cannot_build_is_exit_2(tmp_path: Path, provider: str) -> None:
    """hive-builder's inventory accepts these (the site loads), but build-infra refuses before any change."""
    root = project(tmp_path, PREPARED.replace("prepared", provider))
    assert cli(root, "inventory").returncode == 0
    done = cli(root, "run", "build-infra")
    assert done.returncode == 2, done.stderr
    assert f"provider {provider!r} is not supported yet by build-infra" in done.stderr
    assert f"supported: {', '.join(supported_providers())}" in done.stderr
    assert not (root / ".hive").exists()


def test_misspelt_provider_is_a_site_error_naming_the_supported(tmp_path: Path) -> None:
    root = project(tmp_path, PREPARED.replace("prepared", "dokcer"))
    with pytest.raises(SiteError) as info:
        load_site(root / "inventory" / "hive.yml")
    (issue,) = info.value.issues
    assert issue.line == 5 and issue.key == "stages.private.provider"
    assert "did you mean 'docker'" in issue.problem
    assert f"a provider build-infra builds: {', '.join(supported_providers())}" in issue.allowed
    done = cli(root, "run", "build-infra")
    assert done.returncode == 2 and "'dokcer' is not a provider" in done.stderr
