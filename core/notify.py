"""Notifications, once for every app: a Slack incoming webhook and a generic JSON webhook.

The generic webhook receives Alertmanager's webhook shape (version 4), so anything that consumes
Alertmanager (PagerDuty bridges, Opsgenie, custom receivers) consumes pipewatch too.

`notify(alert)` deduplicates (the same key and status once per NOTIFY_DEDUP_SECONDS, in Redis) and
queues one delivery task per configured channel; the task retries transient failures (network errors,
5xx, 429) with exponential backoff and jitter, and drops permanent ones (other 4xx) with an error log.
Webhook URLs are secrets: they come from the environment and are never logged.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import redis
import requests
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .redis import redis_client

logger = logging.getLogger(__name__)

Status = Literal["firing", "resolved"]
SEVERITY_EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


class TransientDeliveryError(Exception):
    """The receiver may accept the same message later (network error, 5xx, 429)."""


@dataclass(frozen=True)
class Alert:
    key: str  # stable identity of the condition, e.g. "anomaly:12" or "kipris:circuit"
    status: Status
    title: str
    text: str
    severity: str = "warning"
    source: str = "pipewatch"
    labels: dict[str, str] = field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    url: str = ""


def channels() -> dict[str, str]:
    """Configured channels: name -> webhook URL."""
    configured = {"slack": settings.SLACK_WEBHOOK_URL, "webhook": settings.ALERT_WEBHOOK_URL}
    return {name: url for name, url in configured.items() if url}


def slack_payload(alert: Alert) -> dict[str, Any]:
    emoji = ":white_check_mark:" if alert.status == "resolved" else SEVERITY_EMOJI.get(alert.severity, "")
    labels = " ".join(f"`{k}={v}`" for k, v in sorted(alert.labels.items()))
    lines = [f"{emoji} *[{alert.status.upper()}] {alert.title}*", alert.text]
    if labels:
        lines.append(labels)
    if alert.url:
        lines.append(alert.url)
    return {"text": "\n".join(line for line in lines if line)}


def alertmanager_payload(alert: Alert) -> dict[str, Any]:
    labels = {"alertname": alert.title, "severity": alert.severity, "source": alert.source, **alert.labels}
    starts = alert.starts_at or timezone.now()
    return {
        "version": "4",
        "groupKey": alert.key,
        "status": alert.status,
        "receiver": "pipewatch",
        "groupLabels": {"alertname": alert.title},
        "commonLabels": labels,
        "commonAnnotations": {"summary": alert.title, "description": alert.text},
        "externalURL": alert.url,
        "alerts": [
            {
                "status": alert.status,
                "labels": labels,
                "annotations": {"summary": alert.title, "description": alert.text},
                "startsAt": starts.isoformat(),
                "endsAt": alert.ends_at.isoformat() if alert.ends_at else "0001-01-01T00:00:00Z",
                "generatorURL": alert.url,
                "fingerprint": hashlib.sha256(alert.key.encode()).hexdigest()[:16],
            }
        ],
    }


PAYLOADS = {"slack": slack_payload, "webhook": alertmanager_payload}


def _first_time(alert: Alert) -> bool:
    """True once per key+status per dedup window. If Redis is down, send rather than stay silent."""
    digest = hashlib.sha256(f"{alert.key}|{alert.status}".encode()).hexdigest()[:32]
    try:
        return bool(redis_client().set(f"pipewatch:notify:{digest}", 1, nx=True, ex=settings.NOTIFY_DEDUP_SECONDS))
    except redis.RedisError as exc:
        logger.warning("notification dedup unavailable (%s); sending anyway", exc)
        return True


def notify(alert: Alert) -> int:
    """Queue the alert for every configured channel; return how many deliveries were queued."""
    targets = channels()
    if not targets or not _first_time(alert):
        return 0
    for name in targets:
        deliver_notification.delay(name, PAYLOADS[name](alert))
    logger.info("notification %s %s queued for %s", alert.key, alert.status, ", ".join(targets))
    return len(targets)


def post_webhook(url: str, payload: dict[str, Any]) -> None:
    """POST once. Raises TransientDeliveryError for what a retry may fix; logs and drops the rest."""
    try:
        response = requests.post(url, json=payload, timeout=settings.NOTIFY_TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise TransientDeliveryError(f"{type(exc).__name__}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientDeliveryError(f"HTTP {response.status_code}")
    if response.status_code >= 400:
        logger.error("notification rejected with HTTP %s: %s", response.status_code, response.text[:200])


@shared_task(
    name="core.deliver_notification",
    queue="default",
    autoretry_for=(TransientDeliveryError,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
    soft_time_limit=30,
    time_limit=40,
)
def deliver_notification(channel: str, payload: dict[str, Any]) -> None:
    """Deliver one payload to one channel; the URL is looked up here so it never travels in a message."""
    url = channels().get(channel)
    if not url:
        logger.warning("notification channel %s is no longer configured; dropped", channel)
        return
    post_webhook(url, payload)
