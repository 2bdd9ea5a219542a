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
