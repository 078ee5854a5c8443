"""Local audit sinks: a JSONL file and stdout, both in the old gateway's JSON form."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import IO, Protocol

from shared.audit.event import AuditEvent
from shared.jsonutil import dumps

log = logging.getLogger(__name__)


def event_line(event: AuditEvent) -> bytes:
    """One event as a JSON line; an event that cannot be serialised becomes its quarantined form.

    Serialising per event means one bad event can never fail the batch it travels in.
    """
    try:
        return dumps(event.to_json_dict()) + b"\n"
    except Exception as exc:  # noqa: BLE001 - orjson raises TypeError/ValueError subclasses
        from shared.audit.sanitize import quarantine

        log.error("audit event not serialisable; stored quarantined", extra={"event_id": str(event.event_id), "error": repr(exc)})
        return dumps(quarantine(event, f"not serialisable: {exc}").to_json_dict()) + b"\n"


def jsonl(events: list[AuditEvent]) -> bytes:
    """Events as JSON lines (the form both local sinks write and the spool keeps)."""
    return b"".join([event_line(e) for e in events])


class LocalSink(Protocol):
    """Anything that takes a batch of already-redacted events synchronously."""

    name: str

    def write(self, events: list[AuditEvent]) -> None: ...

    def close(self) -> None: ...


class FileSink:
    """Append JSON lines to a file (created with its parent folder; never truncated)."""

    name = "file"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("ab")

    def write(self, events: list[AuditEvent]) -> None:
        """Append and flush the batch (the OS may still buffer: audit files are not a WAL)."""
        self._fh.write(jsonl(events))
        self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


class StdoutSink:
    """Print JSON lines to stdout (or a given text stream); looked up per write for redirection."""

    name = "stdout"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream

    def write(self, events: list[AuditEvent]) -> None:
        """Write and flush the batch."""
        stream = self._stream or sys.stdout
        stream.write(jsonl(events).decode())
        stream.flush()

    def close(self) -> None:
        """Nothing to release (stdout belongs to the process)."""
