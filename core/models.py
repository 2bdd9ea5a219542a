"""core's own tables."""

from __future__ import annotations

from django.db import models


class ManagedSchedule(models.Model):
    """A django-celery-beat entry that pipewatch created from a code declaration (core/periodic.py).

    `fingerprint` is the row as pipewatch last wrote it: a row that no longer matches was edited by an
    operator and is left alone. `declared` is the declaration it was written from.
    """

    name = models.CharField(max_length=200, unique=True)
    fingerprint = models.CharField(max_length=64)
    declared = models.CharField(max_length=64)
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ScheduleChange(models.Model):
    """A change to what a beat entry does (enabled, timing, task, arguments), by an operator or a deploy.

    django-celery-beat saves the whole row after every run it sends (last_run_at, total_run_count), which
    moves `date_changed` too, so that field cannot tell an edit from bookkeeping; a changed fingerprint
    (core/periodic.py) can. Incident explanations list the recent ones.
    """

    name = models.CharField(max_length=200)
    changed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    enabled = models.BooleanField()

    class Meta:
        ordering = ["-changed_at"]

    def __str__(self) -> str:
        return f"{self.name} at {self.changed_at:%Y-%m-%d %H:%M}"
