"""Run journal under `.hive/<stage>/journal/`: which steps finished, so `--resume` restarts at the failed one."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hive_nornir.engine.errors import BadInput


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

    def start(self, phase: str, stage: str, check: bool, steps: list[str], limit: list[str] | None = None,
              tags: list[str] | None = None) -> None:
        """Begin a run: every planned step is recorded as pending, with the -l/-T selection it ran under."""
        self.data = {"phase": phase, "stage": stage, "check": check, "finished": False,
                     "limit": sorted(limit) if limit else None, "tags": sorted(tags) if tags else None,
                     "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "steps": [{"name": s, "status": "pending", "failed_hosts": []} for s in steps]}
        self._save()

    def resume_from(self, steps: list[str], limit: list[str] | None, tags: list[str] | None) -> str:
        """The step `--resume` restarts at; BadInput when there is nothing to resume or the selection differs."""
        prev = self.previous()
        phase = self.path.stem
        if not prev:
            raise BadInput(f"--resume: no earlier {phase} run is recorded in {self.path}; run without --resume")
        selection = {"limit": sorted(limit) if limit else None, "tags": sorted(tags) if tags else None}
        recorded = {"limit": prev.get("limit"), "tags": prev.get("tags")}
        if selection != recorded:
            raise BadInput(
                f"--resume: the last {phase} run (started {prev.get('started_at', '?')}) used "
                f"{_describe(recorded)}, this one asks for {_describe(selection)}; resume with the same "
                f"-l/-T, or run without --resume"
            )
        point = self.resume_point()
        if point is None:
            raise BadInput(f"--resume: the last {phase} run (started {prev.get('started_at', '?')}) finished "
                           f"with no failed step; nothing to resume")
        if point not in steps:
            raise BadInput(f"--resume: the last {phase} run stopped at step {point!r}, which is not among the "
                           f"selected steps ({', '.join(steps)}); run without --resume")
        return point

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


def _describe(selection: dict[str, list[str] | None]) -> str:
    """`-l a,b -T base` or `the whole phase on every host`, for the resume mismatch message."""
    parts = [f"{flag} {','.join(value)}" for flag, value in (("-l", selection["limit"]), ("-T", selection["tags"]))
             if value]
    return " ".join(parts) if parts else "no -l/-T (every step, every host)"
