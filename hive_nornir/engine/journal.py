"""Run journal under `.hive/<stage>/journal/`: which steps finished, so `--resume` restarts at the failed one."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class RunJournal:
    """One JSON file per phase, rewritten atomically after every step."""

    def __init__(self, context_dir: Path, phase: str) -> None:
        self.path = context_dir / "journal" / f"{phase}.json"
        self.data: dict[str, Any] = {}

    def previous(self) -> dict[str, Any]:
        """The last run's journal (empty when none)."""
        if not self.path.exists():
            return {}
        loaded: dict[str, Any] = json.loads(self.path.read_text() or "{}")
        return loaded

    def resume_point(self) -> str | None:
        """Name of the step the last run failed at, or None when it finished cleanly."""
        prev = self.previous()
        if not prev or prev.get("check"):
            return None
        for step in prev.get("steps", []):
            if step.get("failed_hosts") or step.get("status") != "done":
                return str(step["name"])
        return None if prev.get("finished") else prev.get("next_step")

    def start(self, phase: str, stage: str, check: bool, steps: list[str]) -> None:
        """Begin a run: every planned step is recorded as pending."""
        self.data = {"phase": phase, "stage": stage, "check": check, "finished": False,
                     "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "steps": [{"name": s, "status": "pending", "failed_hosts": []} for s in steps]}
        self._save()

    def step_done(self, name: str, failed_hosts: list[str]) -> None:
        """Mark a step done, noting which hosts failed or were unreachable in it."""
        for step in self.data.get("steps", []):
            if step["name"] == name:
                step["status"] = "done"
                step["failed_hosts"] = sorted(failed_hosts)
        self._save()

    def finish(self) -> None:
        """The run reached its end (hosts may still have failed)."""
        self.data["finished"] = True
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)
