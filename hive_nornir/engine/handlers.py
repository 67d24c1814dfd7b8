"""Handlers: a reload/restart notified by several steps runs once per host, and survives a failed run."""

from __future__ import annotations

import json
import shlex
import threading
from pathlib import Path

from hive_nornir.primitives.base import COMMAND_HANDLER
from hive_nornir.primitives.probes import argv

ACTIONS = ("reload", "restart", "reload-or-restart")


def handler_command(name: str) -> str:
    """`reload:ssh` -> `systemctl reload ssh`; `daemon-reload` -> `systemctl daemon-reload`; `run:ARGV` (from
    `run_handler`) -> that command."""
    if name == "daemon-reload":
        return argv("systemctl", "daemon-reload")
    if name.startswith(COMMAND_HANDLER):
        try:
            words = shlex.split(name[len(COMMAND_HANDLER):])
        except ValueError as e:
            raise ValueError(f"command handler {name!r} is not an argument list: {e}") from e
        if not words:
            raise ValueError(f"command handler {name!r} has no command")
        return argv(*words)
    action, sep, unit = name.partition(":")
    if not sep or action not in ACTIONS or not unit:
        raise ValueError(f"unknown handler {name!r}: use one of {', '.join(a + ':UNIT' for a in ACTIONS)}, "
                         f"daemon-reload or {COMMAND_HANDLER}COMMAND (run_handler)")
    return argv("systemctl", action, unit)


class HandlerJournal:
    """Pending notifications per host, written to disk before anything runs so a crash cannot lose them."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._pending: dict[str, list[str]] = {}
        if path is not None and path.exists():
            loaded = json.loads(path.read_text() or "{}")
            self._pending = {h: list(v) for h, v in loaded.items() if v}

    def notify(self, host: str, handlers: tuple[str, ...] | list[str]) -> None:
        """Record notifications (kept in order, without duplicates)."""
        with self._lock:
            queue = self._pending.setdefault(host, [])
            for name in handlers:
                handler_command(name)  # fail fast on a typo, before the host is touched
                if name not in queue:
                    queue.append(name)
            self._save()

    def pending(self, host: str) -> list[str]:
        """Handlers still owed to this host, including those left over from a failed earlier run."""
        with self._lock:
            return list(self._pending.get(host, []))

    def withdraw(self, host: str, names: list[str]) -> None:
        """Take back notifications whose change never ran (a batch that failed before reaching it)."""
        with self._lock:
            queue = self._pending.get(host, [])
            self._pending[host] = [n for n in queue if n not in names]
            if not self._pending[host]:
                self._pending.pop(host, None)
            self._save()

    def done(self, host: str, name: str) -> None:
        """Forget a handler once it ran."""
        with self._lock:
            queue = self._pending.get(host, [])
            if name in queue:
                queue.remove(name)
            if not queue:
                self._pending.pop(host, None)
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._pending, indent=1, sort_keys=True))
        tmp.replace(self.path)
