from __future__ import annotations

from django.apps import AppConfig


class AnomalyConfig(AppConfig):
    name = "anomaly"

    def ready(self) -> None:
        from . import health, metrics  # noqa: F401 - registers the health check and the metrics
