from __future__ import annotations

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"

    def ready(self) -> None:
        # Importing registers the health checks and the Celery task-success signal.
        from . import checks, metrics  # noqa: F401
