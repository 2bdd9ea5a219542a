from __future__ import annotations

from django.apps import AppConfig


class SensorsConfig(AppConfig):
    name = "sensors"

    def ready(self) -> None:
        from . import health  # noqa: F401 - registers the "bridge" health check
