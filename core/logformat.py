"""One log formatter with a layout per logger family (the ingest loggers keep the old harvester's format)."""

from __future__ import annotations

import logging


class RoutedFormatter(logging.Formatter):
    """`routes` maps a logger prefix (`ingest`) to its own format; every other record uses `fmt`."""

    def __init__(self, fmt: str, routes: dict[str, str] | None = None) -> None:
        super().__init__(fmt)
        self.routes = {prefix: logging.Formatter(layout) for prefix, layout in (routes or {}).items()}

    def format(self, record: logging.LogRecord) -> str:
        for prefix, formatter in self.routes.items():
            if record.name == prefix or record.name.startswith(prefix + "."):
                return formatter.format(record)
        return super().format(record)
