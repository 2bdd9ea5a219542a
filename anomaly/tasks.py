"""anomaly's Celery tasks: thin adapters over services."""

from __future__ import annotations
