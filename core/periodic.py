"""Periodic tasks declared in code, mirrored into django-celery-beat's tables without drift.

Each app lists its defaults in `<app>/periodic.py` as `PERIODIC_TASKS = [PeriodicTaskSpec(...)]`.
`sync_periodic_tasks()` (run after migrate, by `manage.py sync_schedules` and by beat once it holds the
lock) makes the database follow the code, with one rule that django-celery-beat's own
`beat_schedule` mirroring lacks: an entry an operator edited in the admin is never overwritten.

How: for every entry it writes, it stores a fingerprint of the row as written (ManagedSchedule).
1. Declared, no row: create it.
2. Declared, row unchanged since our last write: update it to the declaration (a code change lands).
3. Declared, row differs from what we wrote: an operator edited it; leave it and log.
4. Managed row no longer declared: delete it. Rows operators created themselves are never touched.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicTaskSpec:
    """One default schedule. `cron` is a 5-field crontab: "minute hour day-of-month month day-of-week"."""

    name: str
    task: str
    cron: str
    description: str = ""
    # Frequent entries expire before their next run, so a stalled worker never wakes to a backlog.
    expires_seconds: int | None = None
    queue: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def digest(self) -> str:
        """A hash of the declaration, to notice when the code changed it."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def cron_fields(self) -> dict[str, str]:
        parts = self.cron.split()
        if len(parts) != 5:
            raise ValueError(f"{self.name}: cron {self.cron!r} must have 5 fields")
        minute, hour, day_of_month, month_of_year, day_of_week = parts
        return {
            "minute": minute,
            "hour": hour,
            "day_of_month": day_of_month,
            "month_of_year": month_of_year,
            "day_of_week": day_of_week,
        }


def declared_periodic_tasks() -> list[PeriodicTaskSpec]:
    """Every app's PERIODIC_TASKS, in app order; duplicate names are a programming error."""
    specs: list[PeriodicTaskSpec] = []
    for config in apps.get_app_configs():
        try:
            module = importlib.import_module(f"{config.name}.periodic")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.periodic":
                raise
            continue
        specs.extend(getattr(module, "PERIODIC_TASKS", []))
    names = [spec.name for spec in specs]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise ValueError(f"periodic task names declared twice: {sorted(duplicates)}")
    return specs


def fingerprint(task: Any) -> str:
    """What an operator can change on a PeriodicTask row, hashed."""
    crontab = task.crontab
    state = {
        "task": task.task,
        "enabled": task.enabled,
        "one_off": task.one_off,
        "queue": task.queue,
        "expire_seconds": task.expire_seconds,
        "args": task.args,
        "kwargs": task.kwargs,
        "description": task.description,
        "crontab": [
            crontab.minute,
            crontab.hour,
            crontab.day_of_month,
            crontab.month_of_year,
            crontab.day_of_week,
            str(crontab.timezone),
        ]
        if crontab
        else None,
        "interval": task.interval_id,
        "solar": task.solar_id,
        "clocked": task.clocked_id,
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


def _apply(task: Any, spec: PeriodicTaskSpec) -> None:
    from django_celery_beat.models import CrontabSchedule

    task.crontab, _ = CrontabSchedule.objects.get_or_create(**spec.cron_fields(), timezone=settings.TIME_ZONE)
    task.interval = task.solar = task.clocked = None
    task.task = spec.task
    task.description = spec.description
    task.expire_seconds = spec.expires_seconds
    task.queue = spec.queue
    task.kwargs = json.dumps(spec.kwargs)
    task.args = "[]"
    task.enabled = True
    task.one_off = False
    task.save()


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept_operator_edit: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def sync_periodic_tasks() -> SyncReport:
    """Make django-celery-beat's rows follow the declarations (see the module docstring)."""
    from django_celery_beat.models import PeriodicTask

    from .models import ManagedSchedule

    report = SyncReport()
    specs = {spec.name: spec for spec in declared_periodic_tasks()}
    with transaction.atomic():
        managed = {row.name: row for row in ManagedSchedule.objects.select_for_update()}
        for name, spec in specs.items():
            task = PeriodicTask.objects.filter(name=name).select_related("crontab").first()
            record = managed.get(name)
            if task is None:
                task = PeriodicTask(name=name)
                report.created.append(name)
            elif record is not None and record.fingerprint != fingerprint(task):
                report.kept_operator_edit.append(name)
                continue
            elif record is not None and record.declared == spec.digest():
                continue
            else:
                report.updated.append(name)
            _apply(task, spec)
            ManagedSchedule.objects.update_or_create(
                name=name, defaults={"fingerprint": fingerprint(task), "declared": spec.digest()}
            )
        for name, record in managed.items():
            if name not in specs:
                PeriodicTask.objects.filter(name=name).delete()
                record.delete()
                report.deleted.append(name)
    for verb in ("created", "updated", "kept_operator_edit", "deleted"):
        if names := getattr(report, verb):
            logger.info("periodic tasks %s: %s", verb.replace("_", " "), ", ".join(names))
    return report


def record_schedule_change(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """pre_save of PeriodicTask: keep a ScheduleChange when what the entry does changes.

    Beat's own saves after each run (last_run_at, total_run_count) leave the fingerprint as it was.
    """
    from .models import ScheduleChange

    if raw or instance.pk is None:
        return
    before = sender.objects.filter(pk=instance.pk).select_related("crontab").first()
    if before is not None and fingerprint(before) != fingerprint(instance):
        ScheduleChange.objects.create(name=instance.name, enabled=instance.enabled)


def run_now(task: Any) -> str:
    """Queue a PeriodicTask's task immediately (the admin's "run" and the API's POST …/run)."""
    from .celery import app

    options = {"queue": task.queue} if task.queue else {}
    result = app.send_task(
        task.task, args=json.loads(task.args or "[]"), kwargs=json.loads(task.kwargs or "{}"), **options
    )
    logger.info("schedule %s run on demand as task %s", task.name, result.id)
    return str(result.id)
