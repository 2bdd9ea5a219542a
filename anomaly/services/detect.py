"""The minute detection cycle: every active sensor, flow (4 methods) and pressure (3 methods), set-based.

How one minute is evaluated (`detect_minute`):
1. Claim the minute: insert its DetectionRun row inside the cycle's transaction. The row is unique per
   minute, so a second run of the same minute (a redelivered message, a catch-up) blocks on it and then
   skips: each sensor + minute + method is evaluated exactly once, and its events change once.
2. One SQL query returns, per active sensor: this minute's reading, the latest reading time and, for the
   stuck check, when each value last differed from this minute's value (aggregates over the lookback
   window, computed inside PostgreSQL). Criteria (cached per slot and version), the latest forecasts for
   the hour, the latest night summary and per-sensor settings are one query each.
3. The methods run as numpy over all sensors at once (anomaly.methods).
4. Events change only where a method fired or an event is open (anomaly.events.observe).
5. After commit: the `$A` alert frames of every sensor go to the bridge's outbox in one Redis push.

`run_detection` evaluates the target minute (now - ANOMALY_DETECT_DELAY_MINUTES) and every minute of the
catch-up window nobody evaluated yet (a stalled worker, an expired message), oldest first, under a Redis
lock so two runs never overlap.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from core.redis import redis_client
from forecasting.models import Forecast

from .. import criteria, events, methods
from ..metrics import DETECT_CYCLE_SECONDS, DETECT_MINUTES, LAST_MINUTE, METHOD_FIRED
from ..models import AnomalyEvent, DetectionRun, EventStatus, NightMinimum, SensorMethodSettings, Severity, Source
from .night import last_complete_night

logger = logging.getLogger(__name__)

LOCK_KEY = "pipewatch:anomaly:detect:lock"
METRICS = ("flow", "pressure")

MINUTE_SQL = """
SELECT s.id, s.code, s.flow_min, s.flow_max, s.pressure_min, s.pressure_max,
       cur.flow, cur.pressure, cur.status, w.last_ts, w.first_ts, w.flow_changed, w.pressure_changed
FROM sensors_sensor s
LEFT JOIN sensors_reading cur ON cur.sensor_id = s.id AND cur.ts = %(minute)s
LEFT JOIN (
    SELECT r.sensor_id, max(r.ts) AS last_ts, min(r.ts) AS first_ts,
           max(CASE WHEN c.flow IS NULL OR r.flow <> c.flow THEN r.ts END) AS flow_changed,
           max(CASE WHEN c.pressure IS NULL OR r.pressure <> c.pressure THEN r.ts END) AS pressure_changed
    FROM sensors_reading r
    LEFT JOIN sensors_reading c ON c.sensor_id = r.sensor_id AND c.ts = %(minute)s
    WHERE r.ts > %(since)s AND r.ts <= %(minute)s
    GROUP BY r.sensor_id
) w ON w.sensor_id = s.id
WHERE s.active
ORDER BY s.id
"""
MINUTE_COLUMNS = [
    "sensor_id", "code", "flow_min", "flow_max", "pressure_min", "pressure_max", "flow", "pressure", "status",
    "last_ts", "first_ts", "flow_changed", "pressure_changed",
]  # fmt: skip


@dataclass
class CycleResult:
    minute: datetime
    sensors: int = 0
    fired: dict[str, int] = field(default_factory=dict)
    no_forecast: int = 0
    no_criteria: int = 0
    frames: list[bytes] = field(default_factory=list)


def _minutes(later: pd.Series, earlier: pd.Series) -> np.ndarray:
    """(later - earlier) in minutes as floats; NaN where either is missing."""
    delta = pd.to_datetime(later, utc=True) - pd.to_datetime(earlier, utc=True)
    return np.asarray(delta.dt.total_seconds() / 60.0, dtype=float)


def load_minute(minute: datetime) -> pd.DataFrame:
    since = minute - timedelta(minutes=settings.ANOMALY_LOOKBACK_MINUTES)
    adapt = connection.ops.adapt_datetimefield_value  # raw SQL: the backend's own datetime form (SQLite: text)
    with connection.cursor() as cursor:
        cursor.execute(MINUTE_SQL, {"minute": adapt(minute), "since": adapt(since)})
        frame = pd.DataFrame(cursor.fetchall(), columns=MINUTE_COLUMNS)
    for column in ("flow", "pressure", "status", "flow_min", "flow_max", "pressure_min", "pressure_max"):
        frame[column] = pd.to_numeric(frame[column]).astype(float)
    now = pd.Series([minute] * len(frame))
    lookback = float(settings.ANOMALY_LOOKBACK_MINUTES)
    frame["since_reading"] = np.nan_to_num(_minutes(now, frame["last_ts"]), nan=lookback)
    since_first = _minutes(now, frame["first_ts"]) + 1
    for metric in METRICS:
        changed = _minutes(now, frame[f"{metric}_changed"])
        frame[f"{metric}_flat"] = np.where(frame[metric].isna(), 0, np.where(np.isnan(changed), since_first, changed))
    return frame


_criteria_cache: dict[tuple[int, int, bool], pd.DataFrame] = {}


def criteria_for(minute: datetime) -> pd.DataFrame:
    """Criteria rows for this minute's slot, cached per process until a newer version exists."""
    latest = criteria.ensure_criteria()
    local = timezone.localtime(minute)
    key = (latest.pk if latest else 0, local.hour, local.weekday() >= 5)
    if key not in _criteria_cache:
        _criteria_cache.clear()
        _criteria_cache[key] = criteria.current_rows(minute)
    return _criteria_cache[key]


def forecasts_for(minute: datetime) -> pd.DataFrame:
    """The latest issue's forecast for this hour, per sensor and metric (no rows: the methods say no_forecast)."""
    hour = minute.replace(minute=0, second=0, microsecond=0)
    issues = Forecast.objects.filter(target=hour, issued_at__lte=minute)
    issued = issues.aggregate(latest=Max("issued_at"))["latest"]
    rows = issues.filter(issued_at=issued).values_list("sensor_id", "metric", "value") if issued else []
    return pd.DataFrame(list(rows), columns=["sensor_id", "metric", "forecast"])


def nights_for(minute: datetime) -> pd.DataFrame:
    rows = NightMinimum.objects.filter(night=last_complete_night(minute)).values_list(
        "sensor_id", "streak", "min_flow", "baseline"
    )
    return pd.DataFrame(list(rows), columns=["sensor_id", "streak", "night_min", "night_baseline_used"])


SETTING_COLUMNS = [
    "sensor_id", "system_enabled", "value_enabled", "predict_enabled", "night_enabled", "value_k", "gap_minutes",
    "stuck_minutes", "night_nights", "severity",
]  # fmt: skip


def settings_for() -> pd.DataFrame:
    rows = SensorMethodSettings.objects.values_list(*SETTING_COLUMNS)
    return pd.DataFrame(list(rows), columns=SETTING_COLUMNS)


def _column(frame: pd.DataFrame, name: str, default: float) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), default, dtype=float)
    return np.asarray(pd.to_numeric(frame[name], errors="coerce").fillna(default), dtype=float)


def evaluate(frame: pd.DataFrame) -> dict[str, dict[str, methods.MethodResult]]:
    """Run every method over the prepared frame (one row per sensor); see `prepare` for its columns."""
    results: dict[str, dict[str, methods.MethodResult]] = {}
    gap = _column(frame, "gap_minutes", settings.ANOMALY_GAP_MINUTES)
    for metric in METRICS:
        value = np.asarray(frame[metric], dtype=float)
        stuck = np.maximum(
            _column(frame, "stuck_minutes", settings.ANOMALY_STUCK_MINUTES),
            2 * _column(frame, f"{metric}_max_flat_run", 0),
        )
        stuck = np.minimum(stuck, settings.ANOMALY_LOOKBACK_MINUTES)
        # the value band may be narrowed or widened per sensor: rescale it around the median
        value_k = _column(frame, "value_k", np.nan)
        median = _column(frame, f"{metric}_median", np.nan)
        lower = _column(frame, f"{metric}_lower", np.nan)
        upper = _column(frame, f"{metric}_upper", np.nan)
        scale = np.where(np.isnan(value_k), 1.0, value_k / settings.ANOMALY_VALUE_K)
        results[metric] = {
            "system": methods.system(
                value=value,
                status=_column(frame, "status", 0),
                minutes_since_reading=np.asarray(frame["since_reading"], dtype=float),
                flat_minutes=np.asarray(frame[f"{metric}_flat"], dtype=float),
                physical_min=np.asarray(frame[f"{metric}_min"], dtype=float),
                physical_max=np.asarray(frame[f"{metric}_max"], dtype=float),
                gap_minutes=gap,
                stuck_minutes=stuck,
            ),
            "value": methods.value(
                value=value,
                lower=median - (median - lower) * scale,
                upper=median + (upper - median) * scale,
                median=median,
                mad=_column(frame, f"{metric}_mad", np.nan),
            ),
            "predict": methods.predict(
                value=value,
                forecast=_column(frame, f"{metric}_forecast", np.nan),
                residual_lower=_column(frame, f"{metric}_residual_lower", np.nan),
                residual_upper=_column(frame, f"{metric}_residual_upper", np.nan),
            ),
        }
    results["flow"]["night"] = methods.night(
        streak=_column(frame, "streak", np.nan),
        nights=_column(frame, "night_nights", settings.ANOMALY_NIGHT_NIGHTS),
        rise=_column(frame, "night_min", np.nan) / _column(frame, "night_baseline_used", np.nan) - 1,
    )
    for by_method in results.values():
        for method, result in by_method.items():
            enabled = _column(frame, f"{method}_enabled", 1.0).astype(bool)
            by_method[method] = methods.MethodResult(
                fired=result.fired & enabled, score=result.score, state=np.where(enabled, result.state, "disabled")
            )
    return results


def prepare(minute: datetime) -> pd.DataFrame:
    """One row per active sensor with everything the methods need for this minute."""
    frame = load_minute(minute)
    rows = criteria_for(minute)
    for metric in METRICS:
        part = rows[rows["metric"] == metric].drop(columns=["metric", "weekend"])
        part = part.rename(columns={c: f"{metric}_{c}" for c in part.columns if c != "sensor_id"})
        frame = frame.merge(part, on="sensor_id", how="left")
    forecasts = forecasts_for(minute)
    for metric in METRICS:
        part = forecasts[forecasts["metric"] == metric][["sensor_id", "forecast"]]
        frame = frame.merge(part.rename(columns={"forecast": f"{metric}_forecast"}), on="sensor_id", how="left")
    frame = frame.merge(nights_for(minute), on="sensor_id", how="left")
    return frame.merge(settings_for(), on="sensor_id", how="left")


def _evidence(row: dict[str, Any], metric: str, method: str, state: str, minute: datetime) -> dict[str, Any]:
    def number(name: str) -> float | None:
        value = row.get(name)
        return None if value is None or pd.isna(value) else round(float(value), 6)

    evidence: dict[str, Any] = {"minute": minute.isoformat(), "state": state, "value": number(metric)}
    if method == "system":
        evidence |= {
            "status": number("status"),
            "minutes_since_reading": number("since_reading"),
            "flat_minutes": number(f"{metric}_flat"),
            "physical_range": [number(f"{metric}_min"), number(f"{metric}_max")],
        }
    elif method == "value":
        evidence |= {
            "band": [number(f"{metric}_lower"), number(f"{metric}_upper")],
            "median": number(f"{metric}_median"),
            "mad": number(f"{metric}_mad"),
            "criteria_version": number(f"{metric}_version_id"),
        }
    elif method == "predict":
        evidence |= {
            "forecast": number(f"{metric}_forecast"),
            "residual_band": [number(f"{metric}_residual_lower"), number(f"{metric}_residual_upper")],
            "criteria_version": number(f"{metric}_version_id"),
        }
    else:
        evidence |= {
            "night_min": number("night_min"),
            "baseline": number("night_baseline_used"),
            "streak": number("streak"),
        }
    return evidence


def _severity(row: dict[str, Any], method: str, score: float) -> str:
    override = row.get("severity")
    if isinstance(override, str) and override:
        return override
    return Severity.CRITICAL if method == "value" and score >= 2 else Severity.WARNING


def apply_events(minute: datetime, frame: pd.DataFrame, results: dict[str, dict[str, methods.MethodResult]]) -> int:
    """Events change where a method fired or an unresolved event may need closing (events.observe_many)."""
    unresolved = list(
        AnomalyEvent.objects.filter(source=Source.SENSOR)
        .exclude(status=EventStatus.RESOLVED)
        .values_list("sensor_id", "subject", "metric", "method")
    )
    open_keys = {(sensor, metric, method) for sensor, _, metric, method in unresolved}
    position = {int(sensor): index for index, sensor in enumerate(frame["sensor_id"])}
    # a sensor deactivated (or deleted) with an open event is no longer evaluated: its events close as clean
    observations = [
        events.Observation(subject=subject, metric=metric, method=method, fired=False)
        for sensor, subject, metric, method in unresolved
        if sensor not in position
    ]
    for metric, by_method in results.items():
        for method, result in by_method.items():
            fired_rows = set(np.flatnonzero(result.fired).tolist())
            open_rows = {position[s] for s, m, k in open_keys if m == metric and k == method and s in position}
            indices = sorted(fired_rows | open_rows)
            # one DataFrame slice per method, not one .iloc per row (pandas row access is ~100 µs)
            for index, row in zip(indices, frame.iloc[indices].to_dict("records"), strict=True):
                fired = index in fired_rows
                score = float(result.score[index])
                observations.append(
                    events.Observation(
                        subject=str(row["code"]),
                        metric=metric,
                        method=method,
                        fired=fired,
                        score=score,
                        evidence=_evidence(row, metric, method, str(result.state[index]), minute) if fired else {},
                        severity=_severity(row, method, score),
                        sensor_id=int(row["sensor_id"]),
                    )
                )
    return events.observe_many(source=Source.SENSOR, at=minute, observations=observations)


def alert_frames(
    minute: datetime, frame: pd.DataFrame, results: dict[str, dict[str, methods.MethodResult]]
) -> list[bytes]:
    from sensors.protocol import format_alert_frame
    from sensors.settings import frame_layout

    layout = frame_layout()
    flow_flags = methods.flags(results["flow"], "flow")
    pressure_flags = methods.flags(results["pressure"], "pressure")
    # only sensors addressable on the serial line (3-digit codes) get a frame
    on_the_wire = frame["code"].astype(str).str.fullmatch(r"\d{3}").to_numpy()
    return [
        format_alert_frame(code, minute, flow, pressure, layout)
        for code, flow, pressure, wired in zip(frame["code"], flow_flags, pressure_flags, on_the_wire, strict=True)
        if wired
    ]


def detect_minute(minute: datetime) -> CycleResult | None:
    """Evaluate one minute for every active sensor, once (see the module docstring); None if already done."""
    started = time.perf_counter()
    started_at = timezone.now()
    try:
        with transaction.atomic():
            run = DetectionRun.objects.create(minute=minute, started_at=started_at, finished_at=started_at)
            frame = prepare(minute)
            results = evaluate(frame)
            apply_events(minute, frame, results)
            outcome = CycleResult(minute=minute, sensors=len(frame))
            for metric, by_method in results.items():
                for method, result in by_method.items():
                    count = int(result.fired.sum())
                    outcome.fired[f"{metric}.{method}"] = count
                    METHOD_FIRED.labels(metric=metric, method=method).inc(count)
                    outcome.no_forecast += int((result.state == "no_forecast").sum()) if method == "predict" else 0
                    outcome.no_criteria += int((result.state == "no_criteria").sum()) if method == "value" else 0
            run.sensors = outcome.sensors
            run.fired = outcome.fired
            run.no_forecast = outcome.no_forecast
            run.no_criteria = outcome.no_criteria
            run.finished_at = timezone.now()
            run.duration_ms = round((time.perf_counter() - started) * 1000, 1)
            run.save()
            if settings.ANOMALY_ALERT_FRAMES and len(frame):
                outcome.frames = alert_frames(minute, frame, results)
                transaction.on_commit(lambda: _queue_frames(outcome.frames))
    except IntegrityError:
        logger.info("minute %s was already evaluated", minute)
        return None
    DETECT_CYCLE_SECONDS.observe(time.perf_counter() - started)
    LAST_MINUTE.set(minute.timestamp())
    return outcome


def _queue_frames(frames: list[bytes]) -> None:
    from sensors.outbox import queue_frames

    try:
        queue_frames(frames)
    except redis.RedisError as exc:
        # the next minute carries fresh flags; one minute of flags is not worth failing the cycle over
        logger.warning("alert frames for %d sensor(s) not queued: %s", len(frames), exc)


def pending_minutes(now: datetime) -> list[datetime]:
    """The target minute and the unevaluated minutes of the catch-up window before it, oldest first."""
    target = now.replace(second=0, microsecond=0) - timedelta(minutes=settings.ANOMALY_DETECT_DELAY_MINUTES)
    window = [target - timedelta(minutes=offset) for offset in range(settings.ANOMALY_CATCHUP_MINUTES)]
    done = set(DetectionRun.objects.filter(minute__in=window).values_list("minute", flat=True))
    return sorted(minute for minute in window if minute not in done)


def run_detection(now: datetime | None = None) -> list[CycleResult]:
    """Evaluate the pending minutes under the detection lock; an overlapping run returns [] at once."""
    now = now or timezone.now()
    lock = redis_client().lock(LOCK_KEY, timeout=settings.ANOMALY_LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        DETECT_MINUTES.labels(outcome="skipped_locked").inc()
        logger.info("detection already running; this run skips")
        return []
    try:
        minutes = pending_minutes(now)
        target = minutes[-1] if minutes else None
        results = []
        for minute in minutes:
            result = detect_minute(minute)
            if result is not None:
                results.append(result)
                DETECT_MINUTES.labels(outcome="evaluated" if minute == target else "late").inc()
        return results
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            logger.warning("detection lock expired before the run finished")
