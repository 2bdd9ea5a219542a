from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_save


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "pipewatch core"

    def ready(self) -> None:
        # Importing registers the system checks, core's health checks and the Celery metric signals.
        from django_celery_beat.models import PeriodicTask

        from . import checks, metrics  # noqa: F401
        from .api import authentication  # noqa: F401 - its signals forget deleted tokens and changed users
        from .periodic import record_schedule_change
        from .supervision import register_health_check

        register_health_check()

        post_migrate.connect(_sync_schedules_after_migrate, sender=self)
        pre_save.connect(record_schedule_change, sender=PeriodicTask, dispatch_uid="pipewatch.schedule_change")


def _sync_schedules_after_migrate(**kwargs: Any) -> None:
    """After `migrate`, the declared periodic tasks exist in the admin before beat first starts."""
    from .periodic import sync_periodic_tasks

    sync_periodic_tasks()
