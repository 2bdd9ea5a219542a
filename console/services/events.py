"""What the events pages show and do: filtered lists, the evidence chart, acknowledge/resolve with a note.

Filtering is anomaly's own FilterSet (the API's filters, the same rules and messages); the transitions are
anomaly.events.acknowledge/resolve. The console adds only the note, kept in its EventNote table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import QueryDict
from django.utils import timezone

from aiops.insight import service as insight_service
from aiops.insight.models import Insight
from aiops.models import Incident, IncidentMember
from anomaly import events as transitions
from anomaly.filters import AnomalyEventFilter
from anomaly.models import AnomalyEvent, EventStatus, Source
from monitoring.services import queries as host_queries
from sensors.models import Metric

from ..models import EventAction, EventNote
from .charts import Chart, bucket_seconds, column, epoch_seconds
from .sensors import criteria_band, event_marks, forecast_as_issued, metric_chart, sensor_series

PAGE_SIZE = 50
# The evidence chart shows the event with this much context on both sides.
CONTEXT = timedelta(hours=6)


@dataclass
class EventList:
    filters: AnomalyEventFilter
    page: Page | None
    errors: dict[str, Any]
    counts: dict[str, int]


def event_list(params: QueryDict, page_number: str | int = 1) -> EventList:
    """Events matching the filters (anomaly's AnomalyEventFilter), newest first, PAGE_SIZE a page."""
    queryset: QuerySet[AnomalyEvent] = AnomalyEvent.objects.select_related("sensor", "acknowledged_by", "resolved_by")
    filters = AnomalyEventFilter(params, queryset=queryset)
    counts = dict(
        AnomalyEvent.objects.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    if not filters.is_valid():
        return EventList(filters, None, dict(filters.errors), counts)
    ordered = filters.qs.order_by("-started_at", "-id")
    return EventList(filters, Paginator(ordered, PAGE_SIZE).get_page(page_number), {}, counts)


class ActionError(ValueError):
    """The action cannot apply (the event is already resolved)."""


def act(event_id: int, action: str, user_id: int | None, note: str) -> AnomalyEvent:
    """Acknowledge or resolve an event and keep the operator's note; ActionError when it no longer applies."""
    change = {EventAction.ACKNOWLEDGE: transitions.acknowledge, EventAction.RESOLVE: transitions.resolve}[
        EventAction(action)
    ]
    with transaction.atomic():
        try:
            event = change(event_id, user_id)
        except ValueError as exc:
            raise ActionError(str(exc)) from exc
        EventNote.objects.create(event=event, action=action, note=note.strip()[:2000], user_id=user_id)
    return event


def notes(event: AnomalyEvent) -> list[EventNote]:
    return list(EventNote.objects.filter(event=event).select_related("user"))


def evidence_rows(event: AnomalyEvent) -> list[tuple[str, str]]:
    """The evidence document as label/value rows (lists joined), in the order detection wrote it."""
    rows = []
    for key, value in (event.evidence or {}).items():
        shown = (
            " .. ".join("-" if item is None else f"{item:g}" for item in value) if isinstance(value, list) else value
        )
        rows.append((key.replace("_", " "), "-" if shown is None else str(shown)))
    return rows


def evidence_chart(event: AnomalyEvent, now: datetime | None = None) -> Chart | None:
    """The series the event fired on around it: a sensor's metric with criteria and forecast, or a host metric."""
    now = now or timezone.now()
    start = event.started_at - CONTEXT
    end = min(now, (event.ended_at or event.last_fired_at) + CONTEXT)
    seconds = bucket_seconds(end - start)
    if event.source == Source.SENSOR and event.sensor_id and event.metric in Metric.values:
        observed = sensor_series(event.sensor_id, start, end, seconds)
        forecast = forecast_as_issued(event.sensor_id, start, end)
        band = criteria_band(event.sensor_id, pd.DatetimeIndex(observed.index.union(forecast.index)))[event.metric]
        marks = event_marks([event], event.metric, now)
        return metric_chart(
            event.metric, observed=observed, forecast=forecast, band=band, marks=marks, name="event-evidence"
        )
    if event.source == Source.HOST and event.metric in host_queries.SCALAR_COLUMNS:
        try:
            rows = host_queries.bucket_rows([event.metric], host=event.subject, start=start, end=end, seconds=seconds)
        except host_queries.UnknownHostError:
            return None
        frame = pd.DataFrame(rows, columns=["timestamp", event.metric])
        chart = Chart(name="event-evidence", title=f"{event.subject} {event.metric}")
        chart.x = epoch_seconds(frame["timestamp"])
        chart.add(event.metric, column(frame[event.metric]), color="#1d4ed8", width=1.5)
        chart.marks = event_marks([event], event.metric, now)
        return chart
    return None


def open_counts() -> dict[str, dict[str, int]]:
    """Unresolved events: severity -> source -> count (the overview's grid)."""
    grid: dict[str, dict[str, int]] = {}
    rows = (
        AnomalyEvent.objects.exclude(status=EventStatus.RESOLVED)
        .order_by()
        .values_list("severity", "source")
        .annotate(n=Count("id"))
    )
    for severity, source, count in rows:
        grid.setdefault(severity, {})[source] = count
    return grid


def incident_of(event: AnomalyEvent) -> Incident | None:
    membership = IncidentMember.objects.select_related("incident").filter(event=event).first()
    return membership.incident if membership else None


def explanation(event: AnomalyEvent) -> Insight | None:
    """The newest explanation of the event's incident (or of the event alone, when it has no incident)."""
    incident = incident_of(event)
    insights = Insight.objects.filter(incident=incident) if incident else Insight.objects.filter(event=event)
    return insights.filter(error="").order_by("-created_at", "-pk").first()


def explain(event: AnomalyEvent, username: str) -> tuple[Insight | None, str]:
    """Explain now (aiops.insight's on-demand path): the rules' answer at once, the LLM's queued if configured."""
    incident = incident_of(event)
    if incident is not None:
        return insight_service.explain_on_demand(incident=incident, requested_by=username)
    return insight_service.explain_on_demand(event=event, requested_by=username)
