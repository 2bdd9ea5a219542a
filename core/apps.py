from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "pipewatch core"

    def ready(self) -> None:
        # Importing registers the system checks, core's health checks and the Celery metric signals.
        from . import checks, metrics  # noqa: F401

        post_migrate.connect(_sync_schedules_after_migrate, sender=self)


def _sync_schedules_after_migrate(**kwargs: Any) -> None:
    """After `migrate`, the declared periodic tasks exist in the admin before beat first starts."""
    from .periodic import sync_periodic_tasks

    sync_periodic_tasks()
