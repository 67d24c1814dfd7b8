"""The CLI and the API start without the heavy libraries: paramiko, boto3 and the docker SDK load where used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("paramiko", "boto3", "botocore", "docker", "netmiko", "moto")


def _loaded_after(statement: str, cwd: Path | None = None) -> list[str]:
    """Import in a fresh interpreter (this one has everything loaded already) and list the heavy modules present."""
    probe = (f"import sys, json\n{statement}\n"
             f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True,
                         cwd=cwd)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("statement", [
    "import hive_nornir.cli",
    "import hive_nornir.api",
    "import hive_nornir.transport.errors",
    "import hive_nornir.providers",
])
def test_start_up_imports_no_heavy_library(statement: str) -> None:
    assert _loaded_after(statement) == []


def test_cli_help_imports_no_heavy_library() -> None:
    statement = ("from hive_nornir.cli import build_parser\n"
                 "try:\n    build_parser().parse_args(['--help'])\nexcept SystemExit:\n    pass")
    assert _loaded_after(statement) == []


def test_the_transport_still_resolves_its_names_on_use() -> None:
    import hive_nornir.transport as transport

    assert transport.SSHSession.__name__ == "SSHSession"
    assert issubclass(transport.ConnectTimeout, transport.ConnectError)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        transport.nothing  # noqa: B018 - the attribute access is the test
    assert json.dumps(sorted(transport.__all__)) == json.dumps(sorted(transport._WHERE))


def test_connect_stays_the_function_after_its_submodule_loads() -> None:
    statement = ("import hive_nornir.transport.connect\nfrom hive_nornir.transport import connect\n"
                 "assert callable(connect) and connect.__module__ == 'hive_nornir.transport.session', connect")
    assert "paramiko" in _loaded_after(statement)


def test_the_inventory_command_reads_the_site_without_nornir_plugins(tmp_path: Path) -> None:
    """InitNornir imports every registered connection plugin (netmiko, our paramiko transport): `inventory` has
    no use for them, so it builds the inventory itself."""
    statement = ("import runpy\nsys.argv = ['hive_nornir', 'inventory', '--json']\n"
                 "try:\n    runpy.run_module('hive_nornir', run_name='__main__')\nexcept SystemExit as e:\n"
                 "    assert e.code in (0, None), e.code\nprint()")
    assert _loaded_after(statement, cwd=tmp_path) == []
