"""The spool: an append-only journal of valid readings that are not yet committed to the database.

Every valid reading is appended here as soon as it is read (one write per chunk read), and the bridge
commits from the journal in file order, recording the committed byte offset in a side file after each
commit. So a database outage only means the offset stops moving (readings pile up on disk, in order),
and a bridge killed at any moment - even with SIGKILL - replays from the offset at its next start. Replay
may repeat the last batch: storage is an idempotent upsert on (sensor, minute), so it is stored once.

Line format: `code,unix_minute_seconds,flow,pressure,status,received_unix_time` (floats in repr form,
so they round-trip exactly).
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from .protocol import FrameReading

logger = logging.getLogger(__name__)

READ_CHUNK_BYTES = 1 << 20


def encode(reading: FrameReading, received: float) -> bytes:
    return (
        f"{reading.sensor},{int(reading.ts.timestamp())},{reading.flow!r},{reading.pressure!r},"
        f"{reading.status},{received!r}\n"
    ).encode("ascii")


def decode(line: bytes) -> tuple[FrameReading, float]:
    code, ts, flow, pressure, status, received = line.decode("ascii").split(",")
    reading = FrameReading(code, datetime.fromtimestamp(int(ts), UTC), float(flow), float(pressure), int(status))
    return reading, float(received)


class Journal:
    """`path` holds the readings; `path.offset` the byte offset up to which they are committed."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.offset_path = path.with_name(path.name + ".offset")
        self._file = path.open("ab+")
        self._size = self._file.seek(0, os.SEEK_END)
        self.committed = min(self._read_offset(), self._size)
        # A torn last line (killed mid-write) is cut off: it was never acknowledged to anyone.
        self._truncate_torn_tail()
        self.depth = self._count_lines(self.committed)

    def _read_offset(self) -> int:
        try:
            return int(self.offset_path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            logger.warning("spool offset file %s is unreadable: replaying the whole spool", self.offset_path)
            return 0

    def _truncate_torn_tail(self) -> None:
        if self._size == 0:
            return
        self._file.seek(max(self.committed, self._size - 4096))
        tail = self._file.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        keep = self._size - len(tail) + cut + 1 if cut >= 0 else max(self.committed, self._size - len(tail))
        logger.warning("spool %s ends in a torn line: %d bytes cut", self.path, self._size - keep)
        self._file.truncate(keep)
        self._size = keep

    def _count_lines(self, start: int) -> int:
        count = 0
        self._file.seek(start)
        while chunk := self._file.read(READ_CHUNK_BYTES):
            count += chunk.count(b"\n")
        return count

    @property
    def size(self) -> int:
        return self._size

    def append(self, lines: list[bytes]) -> None:
        """Append encoded readings (one write: one system call per chunk read from the port)."""
        if not lines:
            return
        data = b"".join(lines)
        self._file.seek(0, os.SEEK_END)
        try:
            self._file.write(data)
            self._file.flush()
        except OSError:
            # Disk full or failing: leave no torn line behind; the caller stores these rows another way.
            with contextlib.suppress(OSError):
                self._file.truncate(self._size)
            raise
        self._size += len(data)
        self.depth += len(lines)

    def sync(self) -> None:
        """fsync: survive a power cut, not only a killed process (the page cache already covers that)."""
        os.fsync(self._file.fileno())

    def pending(self, max_rows: int) -> tuple[list[tuple[FrameReading, float]], int]:
        """Up to `max_rows` uncommitted readings in order, and the offset just after the last of them."""
        if self.committed >= self._size:
            return [], self.committed
        self._file.seek(self.committed)
        rows: list[tuple[FrameReading, float]] = []
        end = self.committed
        while len(rows) < max_rows:
            chunk = self._file.read(min(READ_CHUNK_BYTES, (max_rows - len(rows)) * 64 + 256))
            if not chunk:
                break
            lines = chunk.split(b"\n")
            lines.pop()  # an incomplete line (or b"" after the last newline): read again next time
            if not lines:
                break
            for line in lines[: max_rows - len(rows)]:
                end += len(line) + 1
                try:
                    rows.append(decode(line))
                except ValueError:
                    logger.exception("spool line at byte %d is unreadable, skipped: %r", end - len(line) - 1, line)
            self._file.seek(end)
        return rows, end

    def commit(self, end: int, rows: int) -> None:
        """Everything before byte `end` is in the database. An emptied journal is truncated."""
        self.depth = max(0, self.depth - rows)
        if end >= self._size:
            # 1. offset 0 first: a crash between the two steps replays the (committed) file, harmlessly;
            # 2. then truncate. The other order could leave an offset past new data after a crash.
            self._write_offset(0)
            self._file.truncate(0)
            self._size = 0
            self.committed = 0
            self.depth = 0
        else:
            self._write_offset(end)
            self.committed = end

    def _write_offset(self, value: int) -> None:
        temporary = self.offset_path.with_name(self.offset_path.name + ".tmp")
        temporary.write_text(str(value))
        temporary.replace(self.offset_path)

    def close(self) -> None:
        self._file.close()
