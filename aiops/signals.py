"""Incidents react to events at once: a saved AnomalyEvent (opened, resolved) queues one incident pass
after its transaction commits. Passes triggered within COALESCE_SECONDS share one task, so a storm of
forty events costs one pass, not forty; the minute schedule catches whatever a lost trigger missed."""

from __future__ import annotations

import logging
from typing import Any

import redis
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from kombu.exceptions import OperationalError as BrokerError

from anomaly.models import AnomalyEvent
from core.redis import redis_client

logger = logging.getLogger(__name__)

COALESCE_KEY = "pipewatch:aiops:incidents-queued"
COALESCE_SECONDS = 1


def queue_incident_pass() -> None:
    from .tasks import process_incidents

    try:
        if redis_client().set(COALESCE_KEY, 1, nx=True, px=COALESCE_SECONDS * 1000):
            process_incidents.apply_async(countdown=COALESCE_SECONDS)
    except (redis.RedisError, BrokerError) as exc:
        logger.warning("incident pass not queued (%s); the minute schedule will run it", exc)


@receiver(post_save, sender=AnomalyEvent, dispatch_uid="aiops-incidents-on-event")
def _event_saved(sender: type[AnomalyEvent], instance: AnomalyEvent, created: bool, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields")
    if created or update_fields is None or "status" in update_fields:
        transaction.on_commit(queue_incident_pass)
