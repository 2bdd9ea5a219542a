"""Alertmanager's webhook (version 4) as anomaly events with source `alert`, which feed incidents.

Accept, archive, then process: the body is stored as an AlertPayload before anything can fail on it,
then each alert opens/extends (firing) or resolves (resolved) the event of its label set. Alertmanager
resends firing alerts every group_interval/repeat_interval; a resend extends the same event.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from anomaly import events
from anomaly.models import AnomalyEvent, Source

from ..metrics import ALERTS_RECEIVED
from ..models import AlertPayload
from . import incidents

logger = logging.getLogger(__name__)

METHOD = "alertmanager"
# Labels that name the alert or grade it rather than identify what it is about.
NOT_IDENTITY = {"alertname", "severity"}
SEVERITIES = {"critical": "critical", "page": "critical", "error": "critical", "warning": "warning",
              "info": "info", "none": "info"}  # fmt: skip


class PayloadError(ValueError):
    """The body is not an Alertmanager webhook payload (a 400 with this message)."""


def authorized(header: str) -> bool:
    """Bearer AIOPS_ALERTS_TOKEN or Basic AIOPS_ALERTS_BASIC_USER:PASSWORD (constant-time compares)."""
    scheme, _, credentials = header.partition(" ")
    token = settings.AIOPS_ALERTS_TOKEN
    if scheme.lower() == "bearer" and token:
        return hmac.compare_digest(credentials.strip().encode(), token.encode())
    user, password = settings.AIOPS_ALERTS_BASIC_USER, settings.AIOPS_ALERTS_BASIC_PASSWORD
    if scheme.lower() == "basic" and user and password:
        try:
            given = base64.b64decode(credentials.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, f"{user}:{password}".encode())
    return False


def _check(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise PayloadError("not an Alertmanager webhook payload: an object with an alerts array is expected")
    if str(payload.get("version", "4")) != "4":
        raise PayloadError(f"webhook version {payload.get('version')!r} is not supported (4 is)")
    for index, alert in enumerate(payload["alerts"]):
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            raise PayloadError(f"alerts[{index}] has no labels object")
        if alert.get("status") not in ("firing", "resolved"):
            raise PayloadError(f"alerts[{index}].status must be firing or resolved")
        if not alert["labels"].get("alertname"):
            raise PayloadError(f"alerts[{index}] has no alertname label")
    return list(payload["alerts"])


def subject_of(labels: dict[str, str]) -> str:
    """The identity of an alert: its labels except name and severity, canonical (k=v,… sorted)."""
    identity = ",".join(f"{k}={labels[k]}" for k in sorted(labels) if k not in NOT_IDENTITY)
    return (identity or labels["alertname"])[:200]


def receive(payload: Any) -> AlertPayload:
    """Archive then apply one webhook body; PayloadError (nothing applied, the body kept) when malformed."""
    body = payload if isinstance(payload, dict) else {"raw": payload}
    archived = AlertPayload.objects.create(
        receiver=str(body.get("receiver", ""))[:200], group_key=str(body.get("groupKey", ""))[:1000],
        status=str(body.get("status", ""))[:16], payload=body,
        alerts=len(body["alerts"]) if isinstance(body.get("alerts"), list) else 0,
    )  # fmt: skip
    try:
        alerts = _check(payload)
    except PayloadError as exc:
        archived.error = str(exc)
        archived.save(update_fields=["error"])
        raise
    with transaction.atomic():
        for alert in alerts:
            apply_alert(alert)
        archived.processed_at = timezone.now()
        archived.save(update_fields=["processed_at"])
    # Grouped at once, in the web process: the alert may be that the workers are down.
    incidents.assign_events()
    return archived


def apply_alert(alert: dict[str, Any]) -> AnomalyEvent | None:
    labels = {str(k): str(v) for k, v in alert["labels"].items()}
    firing = alert["status"] == "firing"
    ALERTS_RECEIVED.labels(status=alert["status"]).inc()
    evidence = {
        "labels": labels,
        "annotations": alert.get("annotations") or {},
        "startsAt": alert.get("startsAt"),
        "endsAt": alert.get("endsAt"),
        "generatorURL": alert.get("generatorURL", ""),
        "fingerprint": alert.get("fingerprint", ""),
    }
    return events.observe(
        source=Source.ALERT, subject=subject_of(labels), metric=labels["alertname"][:64], method=METHOD,
        at=timezone.now(), fired=firing,
        score=1.0 if firing else 0.0, evidence=evidence,
        severity=SEVERITIES.get(labels.get("severity", "warning").lower(), "warning"), clean_minutes=0,
    )  # fmt: skip
