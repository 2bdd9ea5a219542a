"""Celery tasks of insight, on their own `insight` queue: a slow model occupies an insight worker, never
a detection worker (`anomaly.detect_minute` runs on `detect`)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.db import OperationalError

from aiops.models import Incident

from . import service
from .models import InsightTrigger

logger = logging.getLogger(__name__)


# The LLM's own transient errors are retried inside the client (and answered by the rules meanwhile); a
# database that went away is retried here.
RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": 5,
    "retry_jitter": True,
    "max_retries": 3,
}


# Worst case with the defaults: (1 + INSIGHT_LLM_RETRIES) x 45 s, twice (one repair), plus backoff: ~185 s.
@shared_task(name="aiops.explain_incident", queue="insight", soft_time_limit=300, time_limit=320, **RETRY)
def explain_incident(incident_id: int, trigger: str = InsightTrigger.AUTO, requested_by: str = "") -> list[int]:
    """Explain the incident; the automatic run is idempotent (one row per source), so a redelivery is safe."""
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        logger.warning("insight: incident %s no longer exists", incident_id)
        return []
    rows = service.explain(incident=incident, trigger=trigger, requested_by=requested_by)
    return [row.pk for row in rows]


@shared_task(name="aiops.explain_incident_llm", queue="insight", soft_time_limit=300, time_limit=320, **RETRY)
def explain_llm(incident_id: int, requested_by: str = "") -> int | None:
    """The LLM half of an on-demand explanation (the API answered with the rules' at once)."""
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        return None
    rows = service.explain_llm_only(incident, trigger=InsightTrigger.API, requested_by=requested_by)
    return rows.pk if rows else None
