from __future__ import annotations

from django.apps import AppConfig


class ForecastingConfig(AppConfig):
    name = "forecasting"

    def ready(self) -> None:
        from . import health  # noqa: F401 - registers the health check
