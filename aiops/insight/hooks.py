"""Where insight meets the incidents: the automatic explanation when an incident opens (or rises to the
threshold severity), and the insight inside the incident's notification.

`auto_explain` is a post_save receiver on Incident (this module is imported by AiopsConfig.ready): it queues the task
once per incident (a Redis SET NX, then the Insight table's unique constraint behind it), after commit.
`notification_text` is appended to the incident's message (the rules' insight at least, the LLM's when it
is there); `ready_to_notify` lets the first message wait up to INSIGHT_NOTIFY_WAIT_SECONDS past group_wait
for the LLM's automatic insight when an LLM is configured.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from anomaly.models import Severity
from core.redis import redis_client

from . import tasks
from .models import Insight, InsightSource, InsightTrigger
from .schema import Answer, AnswerError, validate

logger = logging.getLogger(__name__)
RANK: dict[str, int] = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


def auto_applies(severity: str) -> bool:
    threshold = settings.INSIGHT_AUTO_MIN_SEVERITY
    if threshold == "off":
        return False
    return RANK.get(severity, 1) >= RANK.get(threshold, 1)


@receiver(post_save, sender="aiops.Incident", dispatch_uid="insight-auto-explain")
def auto_explain(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Queue the automatic explanation of this incident once (deduplicated across saves and processes)."""
    if instance.status == "resolved" or not auto_applies(instance.severity):
        return
    incident_id = instance.pk
    try:
        first = redis_client().set(f"pipewatch:insight:auto:{incident_id}", 1, nx=True, ex=7 * 24 * 3600)
    except redis.RedisError as exc:
        logger.warning("insight: cannot queue the automatic explanation of incident %s (%s)", incident_id, exc)
        return
    if first:
        transaction.on_commit(lambda: tasks.explain_incident.delay(incident_id, InsightTrigger.AUTO))


def latest_answer(incident: Any) -> tuple[Insight, Answer] | None:
    """The newest insight with an answer, the LLM's before the rules'."""
    for source in (InsightSource.LLM, InsightSource.RULES):
        row = incident.insights.filter(source=source, error="").exclude(answer={}).order_by("-created_at").first()
        if row is None:
            continue
        try:
            return row, validate(row.answer)
        except AnswerError:
            logger.warning("insight %s holds a non-conforming answer; not shown", row.pk)
    return None


def notification_text(incident: Any) -> str:
    """The insight as it goes into the incident's message (Slack-escaped), or "" when none applies.

    The rules' automatic insight is written here if the task has not written it yet (a few queries, a few
    milliseconds), so a message never goes out without one for lack of a free insight worker."""
    try:
        if auto_applies(incident.severity) and not incident.insights.filter(source=InsightSource.RULES).exists():
            from .service import explain

            explain(incident=incident, trigger=InsightTrigger.AUTO, use_llm=False)
        found = latest_answer(incident)
    except Exception:  # whatever goes wrong in insight, the incident's message must still go out
        logger.exception("insight: no explanation for incident %s's message", incident.pk)
        return ""
    if found is None:
        return ""
    row, answer = found
    by = f"{row.model}" if row.source == InsightSource.LLM else "rules"
    return f"\nInsight ({by}): {answer.as_slack()}"


def ready_to_notify(incident: Any, now: datetime, group_wait: float) -> bool:
    """False while the first message should still wait for the LLM's automatic insight: at most
    INSIGHT_NOTIFY_WAIT_SECONDS past group_wait. Without an LLM nothing waits (the rules answer at once)."""
    from .service import llm_enabled

    wait = settings.INSIGHT_NOTIFY_WAIT_SECONDS
    if wait <= 0 or not auto_applies(incident.severity) or not llm_enabled():
        return True
    if now - incident.created_at >= timedelta(seconds=group_wait + wait):
        return True
    return incident.insights.filter(trigger=InsightTrigger.AUTO, source=InsightSource.LLM).exists()
