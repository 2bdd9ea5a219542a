"""Every minute: the streaming detector scores the new points of every custom series, and anomalies open
events with source `metric`.

1. One query reads the points after each series' `scored_until` (only series with newer points).
2. Each series' detector (anomaly.detectors.make_detector(AIOPS_METRICS_DETECTOR)) is restored from its
   saved state (MetricState: the pickle as raw bytes), fed the new points in order, and saved again, so
   no series is re-read from its start. A state that does not load (first run, or a detector whose code
   changed) is rebuilt from the last WARMUP_POINTS stored points before the new ones.
3. `anomaly.events.observe_many` applies the minute: a series whose newest points fired opens or
   extends its event; a quiet one closes its event after ANOMALY_CLEAN_MINUTES.
4. States and `scored_until` are replaced (one DELETE, one binary COPY) in the same transaction as the
   events, so a failed run changes nothing and the next one scores the same points.
Runs take a Redis lock so two workers never score the same points.
"""

from __future__ import annotations

import io
import logging
import math
import pickle
import struct
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from anomaly import detectors, events
from anomaly.models import AnomalyEvent, EventStatus, Source
from core.redis import redis_client

from ..models import MetricPoint, MetricSeries, MetricState

logger = logging.getLogger(__name__)

LOCK_KEY = "pipewatch:aiops:score-metrics"
# Points replayed to warm a detector without a usable state: its default window (288) plus margin.
WARMUP_POINTS = 300
METHOD = "stream"
# Points one run scores at most (~20 us each for the robust z-score): a backlog (a first run over history,
# a worker down for an hour) is worked off over several minutes instead of overrunning the task's 50 s.
MAX_POINTS_PER_RUN = 300_000


@dataclass(frozen=True)
class ScoreResult:
    series: int
    points: int
    fired: int
    seconds: float


def _dump(detector: detectors.Detector) -> bytes:
    """The detector's state: its pickle (our own object, read back only from our own database)."""
    return pickle.dumps(detector, protocol=pickle.HIGHEST_PROTOCOL)


class Saved(NamedTuple):
    """A series' saved state as read back (values, not model instances: 10,000 of them a minute)."""

    detector: str
    state: bytes | memoryview
    scored_until: datetime


def _load(saved: Saved | None) -> detectors.Detector | None:
    if saved is None or saved.detector != settings.AIOPS_METRICS_DETECTOR or not saved.state:
        return None
    try:
        detector = pickle.loads(saved.state)  # noqa: S301 - written by _dump only
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "rebuild", never "crash"
        logger.warning("detector state does not load (%s); rebuilding it from stored points", exc)
        return None
    return detector if hasattr(detector, "update") and hasattr(detector, "threshold") else None


def _warm(series_id: int, saved: Saved | None) -> detectors.Detector:
    detector = detectors.make_detector(settings.AIOPS_METRICS_DETECTOR)
    if saved is not None:
        recent = MetricPoint.objects.filter(series_id=series_id, ts__lte=saved.scored_until).order_by("-ts")
        for ts, value in reversed(list(recent.values_list("ts", "value")[:WARMUP_POINTS])):
            detector.update(ts, value)
    return detector


def _new_points(limit: int) -> dict[int, list[tuple[datetime, float]]]:
    """Points after scored_until of every series that has some (step 1), oldest first per series."""
    points_table, series_table = MetricPoint._meta.db_table, MetricSeries._meta.db_table
    sql = (
        f"SELECT p.series_id, p.ts, p.value FROM {series_table} s "  # noqa: S608 - table names are constants
        f"LEFT JOIN {MetricState._meta.db_table} st ON st.series_id = s.id "
        f"JOIN {points_table} p ON p.series_id = s.id AND (st.scored_until IS NULL OR p.ts > st.scored_until) "
        "WHERE s.last_ts IS NOT NULL AND (st.scored_until IS NULL OR s.last_ts > st.scored_until) "
        "ORDER BY p.series_id, p.ts LIMIT %s"
    )
    points: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        for series_id, raw_ts, value in cursor.fetchall():
            ts = datetime.fromisoformat(raw_ts) if isinstance(raw_ts, str) else raw_ts  # SQLite returns text
            points[series_id].append((ts if timezone.is_aware(ts) else ts.replace(tzinfo=UTC), float(value)))
    return points


PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _binary_copy(states: list[MetricState]) -> io.BytesIO:
    """The states in COPY's binary format (PostgreSQL manual, COPY, "Binary Format"): the pickles go as
    they are, instead of twice their size in hex text that both sides must encode and decode."""
    out = io.BytesIO()
    out.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0))  # signature, flags, no header extension
    for s in states:
        detector = s.detector.encode()
        micros = (s.scored_until - PG_EPOCH) // timedelta(microseconds=1)  # timestamptz: int64 since 2000
        # 4 fields, each length-prefixed: series_id bigint, detector text, state bytea, scored_until.
        out.write(struct.pack("!hiqi", 4, 8, s.series_id, len(detector)) + detector)
        out.write(struct.pack("!i", len(s.state)) + bytes(s.state) + struct.pack("!iq", 8, micros))
    out.write(struct.pack("!h", -1))  # trailer
    out.seek(0)
    return out


def _save_states(states: list[MetricState]) -> None:
    """Replace the scored series' states: on PostgreSQL one DELETE and one binary COPY, ~3x faster than
    an upsert from a COPY-filled temporary table (docs/BENCHMARKS.md). The caller's transaction and the
    scoring lock make the swap atomic for readers and writers."""
    if connection.vendor != "postgresql":
        MetricState.objects.bulk_create(
            states, update_conflicts=True, unique_fields=["series"], update_fields=["detector", "state", "scored_until"]
        )
        return
    MetricState.objects.filter(pk__in=[s.series_id for s in states]).delete()
    with connection.cursor() as cursor:
        cursor.copy_expert(
            f"COPY {MetricState._meta.db_table} (series_id, detector, state, scored_until) "
            "FROM STDIN WITH (FORMAT binary)",
            _binary_copy(states),
        )


def _silent(observations: list[events.Observation]) -> list[events.Observation]:
    """Clean observations for the open events of series that sent nothing new: they close in time too."""
    seen = {(o.subject, o.metric, o.method) for o in observations}
    unresolved = AnomalyEvent.objects.filter(source=Source.METRIC, method=METHOD).exclude(status=EventStatus.RESOLVED)
    return [
        events.Observation(subject=subject, metric=metric, method=METHOD, fired=False)
        for subject, metric in unresolved.values_list("subject", "metric")
        if (subject, metric, METHOD) not in seen
    ]


def score_metrics(now: datetime | None = None, max_points: int = MAX_POINTS_PER_RUN) -> ScoreResult:
    """Score every custom series' new points (see the module docstring)."""
    started = time.monotonic()
    minute = (now or timezone.now()).replace(second=0, microsecond=0)
    lock = redis_client().lock(LOCK_KEY, timeout=55, blocking_timeout=0)
    if not lock.acquire(blocking=False):
        logger.info("metric scoring already running elsewhere; skipped")
        return ScoreResult(0, 0, 0, 0.0)
    try:
        with transaction.atomic():
            fresh = _new_points(max_points)
            ids = list(fresh)
            series_rows = {pk: row for pk, *row in MetricSeries.objects.filter(pk__in=ids).values_list(
                "pk", "name", "labels", "labels_key")}  # fmt: skip
            saved = {pk: Saved(detector, state, until) for pk, detector, state, until in MetricState.objects.filter(
                pk__in=ids).values_list("pk", "detector", "state", "scored_until")}  # fmt: skip
            observations = []
            states = []
            fired_count = 0
            total = 0
            for series_id, points in fresh.items():
                name, labels, labels_key = series_rows[series_id]
                detector = _load(saved.get(series_id)) or _warm(series_id, saved.get(series_id))
                peak, peak_at, peak_value = 0.0, points[-1][0], points[-1][1]
                for ts, value in points:
                    score = detector.update(ts, value)
                    score = 0.0 if math.isnan(score) else float(score)
                    if score >= peak:
                        peak, peak_at, peak_value = score, ts, value
                total += len(points)
                fired = peak >= detector.threshold
                fired_count += fired
                subject = f"{name}{{{labels_key}}}"[:200]
                observations.append(
                    events.Observation(
                        subject=subject,
                        metric=name[:64],
                        method=METHOD,
                        fired=fired,
                        score=peak,
                        evidence={
                            "value": peak_value,
                            "score": peak,
                            "at": peak_at.isoformat(),
                            "threshold": detector.threshold,
                            "detector": settings.AIOPS_METRICS_DETECTOR,
                            "labels": labels,
                            "series_id": series_id,
                        },
                    )
                )
                states.append(
                    MetricState(
                        series_id=series_id,
                        detector=settings.AIOPS_METRICS_DETECTOR,
                        state=_dump(detector),
                        scored_until=points[-1][0],
                    )
                )
            observations += _silent(observations)
            events.observe_many(source=Source.METRIC, at=minute, observations=observations)
            _save_states(states)
    finally:
        try:
            lock.release()
        except Exception as exc:  # noqa: BLE001 - an expired lock is harmless here
            logger.warning("score lock release failed: %s", exc)
    result = ScoreResult(len(fresh), total, fired_count, time.monotonic() - started)
    if result.series:
        logger.info("scored %d points of %d custom series (%d fired) in %.2f s", total, len(fresh), fired_count,
                    result.seconds)  # fmt: skip
    return result
