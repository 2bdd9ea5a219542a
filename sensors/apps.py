from __future__ import annotations

from django.apps import AppConfig


class SensorsConfig(AppConfig):
    name = "sensors"

    def ready(self) -> None:
        from . import checks, health  # noqa: F401 - registers the system checks and the "bridge" health check
