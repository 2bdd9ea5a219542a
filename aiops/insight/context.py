"""The evidence an explainer sees: a structured `Context` (what the rules read) and its bounded text
rendering (what an LLM reads).

`build(events)` gathers, for the events of an incident (or a single event):
1. the member events with their evidence;
2. a summary of each series involved (level before, latest, extremes in the window, change);
3. related facts: the other sensors of the same site, the hosts' state and capacity forecasts, the
   queues, beat and detection freshness, recent model activations, schedule edits by operators, the
   KIPRIS circuit, budget and latest harvest;
4. the runbooks that match (keyword score).
Facts that cannot be read (Redis down, say) are reported as unknown, never guessed.
`render(context, tokens)` writes it as text of at most ~tokens x 4 characters, the most telling first:
events, then facts, then series, then runbooks, each cut with "(n more)" when the budget runs out.
"""

from __future__ import annotations

import json
import logging
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Max
from django.utils import timezone

from anomaly.models import AnomalyEvent, DetectionRun, Source
from core import health
from core.models import ScheduleChange
from core.redis import BEAT_HEARTBEAT_KEY, redis_client
from forecasting.models import ModelVersion
from ingest.kipris.guards import CircuitBreaker, MonthlyBudget
from ingest.models import HarvestRun
from monitoring.models import Host, HostSample
from sensors.models import Reading, Sensor

from . import runbooks

logger = logging.getLogger(__name__)

NOTE_ROOM = 28  # "(1234 more lines cut)" always fits
CHARS_PER_TOKEN = 4  # English text and JSON average ~4 characters per token for Llama/Qwen/GPT tokenizers
MAX_EVENTS = 60
MAX_SERIES = 8
QUEUES = ("default", "detect", "ingest", "training", "insight")
HOST_COLUMNS = ("cpu_percent", "memory_percent", "disk_percent")


@dataclass
class EventFact:
    id: int
    source: str
    subject: str
    metric: str
    method: str
    severity: str
    status: str
    started_at: datetime
    last_fired_at: datetime
    fired_count: int
    peak_score: float
    state: str
    site: str
    alertname: str
    evidence: dict[str, Any]


@dataclass
class SeriesSummary:
    subject: str
    metric: str
    before: float | None
    latest: float | None
    low: float | None
    high: float | None
    points: int

    @property
    def change(self) -> float | None:
        if self.before is None or self.before == 0 or self.latest is None:
            return None
        return (self.latest - self.before) / abs(self.before)


@dataclass
class Context:
    title: str
    severity: str
    started_at: datetime
    events: list[EventFact]
    total_events: int
    series: list[SeriesSummary] = field(default_factory=list)
    sites: dict[str, dict[str, Any]] = field(default_factory=dict)
    hosts: list[dict[str, Any]] = field(default_factory=list)
    queues: dict[str, Any] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)
    schedule_edits: list[str] = field(default_factory=list)
    kipris: dict[str, Any] = field(default_factory=dict)
    runbooks: list[runbooks.Match] = field(default_factory=list)

    @property
    def accounts(self) -> list[str]:
        return sorted({e.subject for e in self.events if e.source == Source.ACCOUNT})


def _fact(event: AnomalyEvent) -> EventFact:
    evidence: dict[str, Any] = event.evidence if isinstance(event.evidence, dict) else {}
    raw_labels = evidence.get("labels")
    labels: dict[str, Any] = raw_labels if isinstance(raw_labels, dict) else {}
    return EventFact(
        id=event.pk,
        source=event.source,
        subject=event.subject,
        metric=event.metric,
        method=event.method,
        severity=event.severity,
        status=event.status,
        started_at=event.started_at,
        last_fired_at=event.last_fired_at,
        fired_count=event.fired_count,
        peak_score=event.peak_score,
        state=str(evidence.get("state", "")),
        site=event.sensor.location if event.sensor_id and event.sensor else str(labels.get("site", "")),
        alertname=str(labels.get("alertname", "") or (event.subject if event.source == Source.ALERT else "")),
        evidence=evidence,
    )


def _number(value: Any) -> float | None:
    return round(float(value), 3) if value is not None else None


def _series(fact: EventFact) -> SeriesSummary | None:
    start, end = fact.started_at - timedelta(minutes=60), fact.last_fired_at + timedelta(minutes=5)
    pairs: list[tuple[datetime, float]]
    if fact.source == Source.SENSOR and fact.metric in {"flow", "pressure"}:
        readings = Reading.objects.filter(sensor__code=fact.subject, ts__gte=start, ts__lte=end)
        pairs = list(readings.order_by("ts").values_list("ts", fact.metric))
    elif fact.source == Source.HOST and fact.metric in HOST_COLUMNS:
        samples = HostSample.objects.filter(host__name=fact.subject, ts__gte=start, ts__lte=end)
        pairs = list(samples.order_by("ts").values_list("ts", fact.metric))
    else:
        return None
    before = [value for ts, value in pairs if ts < fact.started_at]
    during = [value for ts, value in pairs if ts >= fact.started_at]
    return SeriesSummary(
        subject=fact.subject,
        metric=fact.metric,
        before=_number(statistics.median(before)) if before else None,
        latest=_number(pairs[-1][1]) if pairs else None,
        low=_number(min(during)) if during else None,
        high=_number(max(during)) if during else None,
        points=len(pairs),
    )


def _sites(facts: list[EventFact], at: datetime) -> dict[str, dict[str, Any]]:
    """Per site of the incident: sensors, how many are silent (no reading in the 10 minutes before the
    incident's newest event), how many are in the incident."""
    out: dict[str, dict[str, Any]] = {}
    for site in sorted({f.site for f in facts if f.source == Source.SENSOR and f.site}):
        sensors = Sensor.objects.filter(location=site, active=True)
        total = sensors.count()
        recent = (
            Reading.objects.filter(sensor__in=sensors, ts__gte=at - timedelta(minutes=10), ts__lte=at)
            .values("sensor")
            .distinct()
            .count()
        )
        involved = len({f.subject for f in facts if f.site == site})
        out[site] = {"sensors": total, "silent": total - recent, "in_incident": involved}
    return out


def _hosts(facts: list[EventFact], at: datetime) -> list[dict[str, Any]]:
    names = {f.subject for f in facts if f.source == Source.HOST}
    names |= {
        str(f.evidence.get("labels", {}).get("host", "")) for f in facts if isinstance(f.evidence.get("labels"), dict)
    }
    hosts = Host.objects.filter(name__in=names - {""}) if names - {""} else Host.objects.filter(active=True)
    out = []
    for host in hosts[:5]:
        sample = HostSample.objects.filter(host=host, ts__lte=at + timedelta(minutes=5)).order_by("-ts").first()
        item: dict[str, Any] = {"host": host.name, "active": host.active}
        if sample is not None:
            item |= {"sample_age_s": round((at - sample.ts).total_seconds())}
            item |= {column: round(getattr(sample, column), 1) for column in HOST_COLUMNS}
        item["capacity"] = _capacity(host.name)
        out.append(item)
    return out


def _capacity(host: str) -> list[str]:
    """The aiops capacity forecasts for this host that reach their limit (empty when none exists yet)."""
    from aiops.models import CapacityForecast

    rows = CapacityForecast.objects.filter(subject=host, seconds_to_limit__isnull=False).order_by("seconds_to_limit")
    return [
        f"{r.kind} reaches {r.limit:g} in {(r.seconds_to_limit or 0) / 3600:.1f} h ({r.window} trend)" for r in rows[:3]
    ]


def _queues(at: datetime) -> dict[str, Any]:
    """Queue lengths, beat and detection freshness, and the last /health results (core caches them in Redis;
    none are run here: a worker ping would cost a second per explanation)."""
    out: dict[str, Any] = {}
    try:
        client = redis_client()
        out["lengths"] = {queue: int(client.llen(queue)) for queue in QUEUES}
        beat = client.get(BEAT_HEARTBEAT_KEY)
        out["beat_age_s"] = round(at.timestamp() - float(beat)) if beat else None
        out["broker"] = "reachable"
        names = health.registered()
        cached = client.mget([health.CACHE_PREFIX + name for name in names]) if names else []
        out["health"] = {
            name: "ok" if entry["ok"] else f"failing: {str(entry.get('detail', ''))[:120]}"
            for name, entry in ((n, json.loads(raw)) for n, raw in zip(names, cached, strict=True) if raw)
        }
    except redis.RedisError as exc:
        out["broker"] = f"unreachable ({type(exc).__name__})"
    last = DetectionRun.objects.aggregate(last=Max("minute"))["last"]
    out["detection_age_s"] = round((at - last).total_seconds()) if last else None
    return out


def _models(at: datetime) -> list[str]:
    recent = ModelVersion.objects.filter(activated_at__gte=at - timedelta(days=7), activated_at__lte=at)
    return [f"{m.metric} model v{m.pk} activated {m.activated_at:%Y-%m-%d %H:%M}" for m in recent[:5] if m.activated_at]


def _schedule_edits(at: datetime) -> list[str]:
    """Beat entries whose behaviour changed in the last 24 h (not beat's own run bookkeeping)."""
    changes = ScheduleChange.objects.filter(changed_at__gte=at - timedelta(hours=24), changed_at__lte=at)
    lines = []
    for change in changes.order_by("-changed_at")[:5]:
        state = "enabled" if change.enabled else "DISABLED"
        lines.append(f"{change.name}: {state}, changed {timezone.localtime(change.changed_at):%Y-%m-%d %H:%M}")
    return lines


def _kipris(at: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        breaker = CircuitBreaker(settings.KIPRIS_CIRCUIT_FAILURES, settings.KIPRIS_CIRCUIT_OPEN_SECONDS)
        out["circuit"] = "open" if breaker.is_open() else "closed"
        out["consecutive_failures"] = int(breaker.client.get(breaker.failures_key) or 0)
        budget = MonthlyBudget(settings.KIPRIS_MONTHLY_BUDGET)
        out["budget"] = f"{budget.used()}/{settings.KIPRIS_MONTHLY_BUDGET or 'unlimited'} calls this month"
        out["budget_exhausted"] = (
            bool(settings.KIPRIS_MONTHLY_BUDGET) and budget.used() >= settings.KIPRIS_MONTHLY_BUDGET
        )
    except redis.RedisError as exc:
        out["circuit"] = f"unknown ({type(exc).__name__})"
    run = HarvestRun.objects.filter(created_at__gte=at - timedelta(hours=24)).order_by("-created_at").first()
    if run is not None:
        out["last_run"] = f"{run.status}: {run.error[:200]}" if run.error else run.status
    return out


def _runbook_query(facts: list[EventFact]) -> str:
    parts = []
    for fact in facts:
        parts += [fact.source, fact.metric, fact.method, fact.state, fact.alertname]
    return " ".join(part for part in parts if part)


def build(events: list[AnomalyEvent], *, title: str = "", severity: str = "", at: datetime | None = None) -> Context:
    """The context of these events (an incident's members, or one event)."""
    ordered = sorted(events, key=lambda e: (e.started_at, e.pk))
    facts = [_fact(event) for event in ordered[:MAX_EVENTS]]
    newest = max((f.last_fired_at for f in facts), default=at or timezone.now())
    at = at or newest
    context = Context(
        title=title or (f"{facts[0].subject} {facts[0].metric} {facts[0].method}" if facts else "no events"),
        severity=severity or max((f.severity for f in facts), default="info"),
        started_at=facts[0].started_at if facts else at,
        events=facts,
        total_events=len(events),
    )
    seen: set[tuple[str, str, str]] = set()
    for fact in facts:
        key = (fact.source, fact.subject, fact.metric)
        if key not in seen and len(context.series) < MAX_SERIES:
            seen.add(key)
            if summary := _series(fact):
                context.series.append(summary)
    try:
        context.sites = _sites(facts, at)
        context.hosts = _hosts(facts, at)
        context.queues = _queues(at)
        context.models = _models(at)
        context.schedule_edits = _schedule_edits(at)
        context.kipris = _kipris(at)
    except DatabaseError:
        logger.exception("insight: related facts could not be read; explaining from the events alone")
    context.runbooks = runbooks.search(_runbook_query(facts))
    return context


def _event_line(fact: EventFact) -> str:
    keep = {
        k: v for k, v in fact.evidence.items() if k not in {"minute", "labels", "annotations"} and v not in (None, "")
    }
    labels = fact.evidence.get("labels") if isinstance(fact.evidence.get("labels"), dict) else {}
    if labels:
        keep["labels"] = {k: labels[k] for k in list(labels)[:8]}
    annotations = fact.evidence.get("annotations")
    if isinstance(annotations, dict) and annotations.get("summary"):
        keep["summary"] = str(annotations["summary"])[:200]
    site = f" site={fact.site}" if fact.site else ""
    return (
        f"- #{fact.id} {fact.source} {fact.subject}{site} {fact.metric} {fact.method} {fact.state} "
        f"{fact.severity}/{fact.status} {timezone.localtime(fact.started_at):%Y-%m-%d %H:%M}"
        f"..{timezone.localtime(fact.last_fired_at):%H:%M} ({fact.fired_count} min, peak {fact.peak_score:.2f}) "
        f"{json.dumps(keep, default=str, separators=(',', ':'))[:400]}"
    )


def sections(context: Context) -> list[tuple[str, list[str]]]:
    series = []
    for s in context.series:
        change = f", change {s.change:+.0%}" if s.change is not None else ""
        series.append(
            f"- {s.subject} {s.metric}: before {s.before}, latest {s.latest}, "
            f"window {s.low}..{s.high}{change} ({s.points} points)"
        )
    facts = [f"- site {site}: {json.dumps(info)}" for site, info in context.sites.items()]
    facts += [f"- host {json.dumps(host, default=str)}" for host in context.hosts]
    if context.queues:
        facts.append(f"- queues and schedules: {json.dumps(context.queues, default=str)}")
    if context.kipris:
        facts.append(f"- KIPRIS: {json.dumps(context.kipris, default=str)}")
    facts += [f"- model: {line}" for line in context.models]
    facts += [f"- schedule edit: {line}" for line in context.schedule_edits]
    books = [f"## runbook {m.runbook.name} (score {m.score})\n{m.runbook.text.strip()}" for m in context.runbooks]
    more = context.total_events - len(context.events)
    events = [_event_line(f) for f in context.events] + ([f"- ({more} more events)"] if more > 0 else [])
    header = [
        (
            f"Incident: {context.title}; severity {context.severity}; started "
            f"{timezone.localtime(context.started_at):%Y-%m-%d %H:%M %Z}; {context.total_events} event(s)."
        )
    ]
    return [("", header), ("Events", events), ("Related facts", facts), ("Series", series), ("Runbooks", books)]


def render(context: Context, tokens: int | None = None) -> str:
    """The context as text within ~tokens (INSIGHT_CONTEXT_TOKENS), most telling sections first; where the
    budget runs out, a note says how many lines were cut (room for it is always kept)."""
    budget = (tokens or settings.INSIGHT_CONTEXT_TOKENS) * CHARS_PER_TOKEN - NOTE_ROOM
    out: list[str] = []
    used = 0
    parts = [(name, lines) for name, lines in sections(context) if lines]
    for position, (name, lines) in enumerate(parts):
        block = ([f"# {name}"] if name else []) + lines
        for index, line in enumerate(block):
            if used + len(line) + 1 > budget:
                room = budget - used - 2
                shown = index
                if name == "Runbooks" and index and room > 80:  # a runbook is worth its first steps
                    out.append(line[:room] + " …")
                    shown += 1
                rest = len(block) - shown + sum(len(later) for _, later in parts[position + 1 :])
                if rest:
                    out.append(f"({rest} more lines cut)")
                return "\n".join(out)
            out.append(line)
            used += len(line) + 1
    return "\n".join(out)
