"""A task that raises on many hosts: its traceback is logged once per step with the hosts it hit, not once per host."""

from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass, field


@dataclass
class Crash:
    """One distinct failure (same exception type raised from the same code path) and where it happened."""

    kind: str
    text: str  # the first host's formatted traceback
    hosts: list[str] = field(default_factory=list)


class Crashes:
    """Collects unexpected exceptions from the worker threads of a step; report() logs and forgets them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[object, ...], Crash] = {}

    def record(self, exc: BaseException, host: str) -> None:
        """Remember one host's exception, grouped by type and the frames it came through (messages may differ)."""
        frames = traceback.extract_tb(exc.__traceback__)
        key = (type(exc).__qualname__, *((f.filename, f.lineno) for f in frames))
        with self._lock:
            crash = self._seen.get(key)
            if crash is None:
                text = "".join(traceback.format_exception(exc)).rstrip()
                crash = self._seen[key] = Crash(type(exc).__name__, text)
            crash.hosts.append(host)

    def report(self, step: str, log: logging.Logger) -> list[Crash]:
        """Log each distinct crash of the step once, naming every host it hit; returns them (and forgets them)."""
        with self._lock:
            found, self._seen = list(self._seen.values()), {}
        for crash in found:
            hosts = sorted(crash.hosts)
            log.error("step %s: the task raised %s on %d host(s): %s\n%s", step, crash.kind, len(hosts),
                      ", ".join(hosts), crash.text)
        return found
