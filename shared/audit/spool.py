"""Local spool for audit events Postgres could not take: fsync'd JSONL segments, replayed later.

Several processes may share one spool folder (gateway and PDP on one data dir). Each writer holds
an exclusive `flock` on its open segment, and a replayer only takes segments it can lock, so nobody
replays a file still being written, and a crashed process's segments are picked up by a survivor.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.audit.event import AuditEvent
from shared.audit.sinks import jsonl
from shared.jsonutil import loads

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"
REJECTED_SUFFIX = ".rejected"


class Spool:
    """Append-only segments under `directory`; `segments()` yields closed ones for replay."""

    def __init__(self, directory: Path, service: str) -> None:
        self.directory = directory
        self.service = service
        self._file: int | None = None
        self._path: Path | None = None
        self._seq = 0
        self.unreadable = 0

    def append(self, events: list[AuditEvent]) -> None:
        """Write events durably (fsync) before returning; raises OSError if the disk refuses."""
        if not events:
            return
        data = jsonl(events)
        fd = self._open()
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)

    def rotate(self) -> None:
        """Close the current segment so it can be replayed; the next append opens a new one."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            os.close(self._file)
            self._file = None
            self._path = None

    close = rotate

    def has_pending(self) -> bool:
        """True when any segment (ours or another process's) waits for replay."""
        return self.directory.is_dir() and any(self.directory.glob("*" + SUFFIX))

    @contextmanager
    def claim(self, path: Path) -> Iterator[list[AuditEvent] | None]:
        """Lock a segment and read it; None when another process holds it. Caller deletes it."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            yield None  # another replayer finished it
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            if not path.exists():  # replayed and removed between our open and lock
                yield None
                return
            yield list(self._parse(path))
        finally:
            os.close(fd)

    def segments(self) -> list[Path]:
        """Spool segments, oldest first, excluding the one this process is writing."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("*" + SUFFIX) if p != self._path)

    def reject(self, events: list[AuditEvent], path: Path) -> Path:
        """Keep events the database refused (bad data) beside the spool, for a human to inspect."""
        target = path.with_suffix(REJECTED_SUFFIX)
        with target.open("ab") as fh:
            fh.write(jsonl(events))
        return target

    def _open(self) -> int:
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._seq += 1
            # Names sort by creation time, so replay keeps rough chronological order.
            name = f"{time.time_ns():020d}-{self.service}-{os.getpid()}-{self._seq}{SUFFIX}"
            self._path = self.directory / name
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._file = fd
            # fsync of the file alone does not make its new directory entry survive a crash.
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return self._file

    def _parse(self, path: Path) -> Iterator[AuditEvent]:
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            if not line.strip():
                continue
            try:
                yield AuditEvent.from_json_dict(loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                # Only a torn last line after a crash can look like this; nothing else writes here.
                self.unreadable += 1
                log.error("unreadable audit spool line skipped", extra={"path": str(path), "line": number, "error": str(exc)})
