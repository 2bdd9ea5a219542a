"""The Celery app. Configuration lives in Django settings (namespace CELERY_), commented there."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

app = Celery("pipewatch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def route_by_prefix(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> dict | None:
    """Route a task to the queue of the first matching name prefix in PIPEWATCH_QUEUE_PREFIXES."""
    from django.conf import settings

    for prefix, queue in settings.PIPEWATCH_QUEUE_PREFIXES:
        if name.startswith(prefix):
            return {"queue": queue}
    return None


@signals.setup_logging.connect
def _use_django_logging(**_: Any) -> None:
    """Keep Celery from installing its own handlers: Django's LOGGING formats every process alike."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(sender: Any = None, **_: Any) -> None:
    """Between tasks, what Django does between requests: close a database connection that errored and is
    unusable, or is older than CONN_MAX_AGE (CELERY_DB_REUSE_MAX keeps Celery from closing every one). Not
    around an eager task: it runs inside its caller's transaction."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_bad_configuration(**_: Any) -> None:
    """Workers and beat run no system checks by themselves; a bad production config must not start."""
    from .checks import refuse_bad_configuration

    refuse_bad_configuration()
