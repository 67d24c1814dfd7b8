"""Programs that run on hosts are files in hive_nornir/payloads/, read as text and never imported here."""

from __future__ import annotations

from importlib.resources import files


def payload_text(name: str) -> str:
    """The shipped source of one host-side program (e.g. `zabbix_api.py`), to install with a File."""
    return files("hive_nornir").joinpath("payloads").joinpath(name).read_text()
