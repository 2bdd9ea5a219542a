from __future__ import annotations

from django.apps import AppConfig


class AiopsConfig(AppConfig):
    name = "aiops"
    verbose_name = "AIOps"

    def ready(self) -> None:
        from . import metrics, signals  # noqa: F401 - registers the Prometheus metrics and the event hook
        from .insight import hooks  # noqa: F401 - insight: explains incidents as they open (post_save)
