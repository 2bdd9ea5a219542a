from __future__ import annotations

from django.apps import AppConfig


class EventlogsConfig(AppConfig):
    name = "eventlogs"
    verbose_name = "Event logs"

    def ready(self) -> None:
        # Importing registers the enrichment-lag health check.
        from . import checks  # noqa: F401
