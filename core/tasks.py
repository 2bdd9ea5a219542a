"""core's Celery tasks (autodiscovered by the worker)."""

from __future__ import annotations

from .notify import deliver_notification

__all__ = ["deliver_notification"]
