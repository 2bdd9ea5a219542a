"""Harvest log lines carry the organisation type and IPR mode (the old harvester's format), and with LOG_DIR
go to one file per (org type, IPR mode), rotated at midnight, 7 kept.

The services set the context once per unit of work (`harvest_context`), a filter copies it onto every
record of the `ingest` loggers, so no call site pastes it into its message.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

UNKNOWN = "-"
LINE_FORMAT = "%(asctime)s | %(levelname)s | %(org_type)s | %(ipr_mode)s | %(message)s"
_context: ContextVar[tuple[str, str]] = ContextVar("harvest_log_context", default=(UNKNOWN, UNKNOWN))


@contextlib.contextmanager
def harvest_context(org_type: str, ipr_mode: str) -> Iterator[None]:
    """Tag every ingest log line written inside (this thread or task) with the org type and IPR mode."""
    token = _context.set((org_type or UNKNOWN, ipr_mode or UNKNOWN))
    try:
        yield
    finally:
        _context.reset(token)


class HarvestContextFilter(logging.Filter):
    """Adds `org_type` and `ipr_mode` to the record from the current harvest context (`-` outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.org_type, record.ipr_mode = _context.get()
        return True


class SplitByHarvestFileHandler(logging.Handler):
    """`<directory>/kipris-<org_type>-<ipr_mode>.log` per pair (`none` outside a harvest), midnight-rotated, 7 kept."""

    def __init__(self, directory: str, backup_count: int = 7, encoding: str = "utf-8") -> None:
        super().__init__()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.backup_count, self.encoding = backup_count, encoding
        self._files: dict[tuple[str, str], logging.handlers.TimedRotatingFileHandler] = {}

    def _file(self, key: tuple[str, str]) -> logging.handlers.TimedRotatingFileHandler:
        handler = self._files.get(key)
        if handler is None:
            name = "-".join("none" if part == UNKNOWN else part.replace("/", "_") for part in key)
            # delay: the file is opened at the first line, so its first midnight is counted from now.
            handler = logging.handlers.TimedRotatingFileHandler(
                self.directory / f"kipris-{name}.log",
                when="midnight",
                backupCount=self.backup_count,
                encoding=self.encoding,
                delay=True,
            )
            handler.setFormatter(self.formatter)
            self._files[key] = handler
        return handler

    def emit(self, record: logging.LogRecord) -> None:
        key = (getattr(record, "org_type", UNKNOWN), getattr(record, "ipr_mode", UNKNOWN))
        with self.lock if self.lock else contextlib.nullcontext():
            self._file(key).emit(record)

    def close(self) -> None:
        for handler in self._files.values():
            handler.close()
        self._files.clear()
        super().close()
