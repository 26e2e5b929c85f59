"""
`EventLog`: every AMI event as one line of JSON, in a rotating file or on a stream.

A line is the object `txami.jsonform.event_json` makes: ``"@timestamp"`` (the
receive time) and then every header in wire order, repeated headers as lists.
Files rotate by size with Twisted's `twisted.python.logfile.LogFile`
(``events.jsonl``, ``events.jsonl.1``, ...), so the log never fills a disk.
A write that fails (a full disk, a closed pipe) is logged once, not once per
event, and the log carries on with the next event.
"""

from __future__ import annotations

from typing import TextIO

from twisted.application.service import Service
from twisted.logger import Logger
from twisted.python.logfile import LogFile

from txami.daemon.hub import EventHub, ReceivedEvent

__all__ = ["DEFAULT_MAX_ROTATED_FILES", "DEFAULT_ROTATE_LENGTH", "EventLog"]

_log = Logger(namespace="txami.daemon.eventlog")

#: Rotate the file once it reaches this many bytes.
DEFAULT_ROTATE_LENGTH = 10_000_000
#: Keep at most this many rotated files (the oldest are deleted).
DEFAULT_MAX_ROTATED_FILES = 10


class EventLog(Service):
    """
    A service writing the events of ``hub`` as JSON lines while it runs.

    Give either ``path`` (a file, opened on start and rotated every
    ``rotate_length`` bytes, keeping ``max_rotated_files`` old ones) or
    ``stream`` (a text stream such as stdout, flushed after every line).
    """

    def __init__(
        self,
        hub: EventHub,
        *,
        path: str | None = None,
        stream: TextIO | None = None,
        rotate_length: int = DEFAULT_ROTATE_LENGTH,
        max_rotated_files: int | None = DEFAULT_MAX_ROTATED_FILES,
    ) -> None:
        if (path is None) == (stream is None):
            raise ValueError("give exactly one of path and stream")
        self.hub = hub
        self.path = path
        self.stream = stream
        self.rotate_length = rotate_length
        self.max_rotated_files = max_rotated_files
        self._file: LogFile | None = None
        self._failing = False
        #: Lines written, and writes that failed.
        self.lines_written = 0
        self.write_errors = 0

    def startService(self) -> None:
        """Open the file (if any) and start writing events."""
        if self.path is not None:
            self._file = LogFile.fromFullPath(  # type: ignore[no-untyped-call]
                self.path,
                rotateLength=self.rotate_length,
                maxRotatedFiles=self.max_rotated_files,
            )
        self.hub.subscribe(self)
        super().startService()  # type: ignore[no-untyped-call]

    def stopService(self) -> None:
        """Stop writing and close the file."""
        self.hub.unsubscribe(self)
        if self._file is not None:
            self._file.close()  # type: ignore[no-untyped-call]
            self._file = None
        super().stopService()  # type: ignore[no-untyped-call]

    def __call__(self, received: ReceivedEvent) -> None:
        """Write one event as one line."""
        line = received.json + "\n"
        try:
            if self._file is not None:
                self._file.write(line)  # type: ignore[no-untyped-call]
            elif self.stream is not None:
                self.stream.write(line)
                self.stream.flush()
            else:
                return
        except (OSError, ValueError) as error:
            # ValueError: a stream closed under us ("I/O operation on closed file").
            self.write_errors += 1
            if not self._failing:
                self._failing = True
                _log.error(
                    "cannot write to the event log {where}: {error}; events are being lost",
                    where=self.path or "stream",
                    error=error,
                )
            return
        self.lines_written += 1
        if self._failing:
            self._failing = False
            _log.info(
                "writing to the event log {where} again after {count} failed writes",
                where=self.path or "stream",
                count=self.write_errors,
            )
