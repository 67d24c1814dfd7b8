"""A lock per stage so two runs (say cron and an operator) never change the same hosts at once."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType


class StageLocked(Exception):
    """Another run holds the stage lock."""


class StageLock:
    """flock on `<context>/lock`; released by the kernel even when the process dies."""

    def __init__(self, context_dir: Path) -> None:
        self.path = context_dir / "lock"
        self._fd: int | None = None

    def __enter__(self) -> StageLock:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StageLocked(f"stage is locked by another run ({holder}); lock file {self.path}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
