"""The minute detection cycle: every active sensor, flow (4 methods) and pressure (3 methods), set-based.

How one minute is evaluated (`detect_minute`):
1. Claim the minute: insert its DetectionRun row inside the cycle's transaction. The row is unique per
   minute, so a second run of the same minute (a redelivered message, a catch-up) blocks on it and then
   skips: each sensor + minute + method is evaluated exactly once, and its events change once.
2. One SQL query returns, per active sensor: this minute's reading, the latest reading time, the number of
   readings in the lookback window and, for the stuck check, when each value last differed from this
   minute's value (aggregates over the lookback window, computed inside PostgreSQL). Criteria (cached per
   slot and version), the latest forecasts for the hour, the latest night summary and per-sensor settings
   are one query each. Only sensors whose value has not changed for the stuck limit's minutes (none, on a
   healthy 1-minute network) need one more query: how many readings that run spans.
3. The methods run as numpy over all sensors at once (anomaly.methods), each sensor judged at its own
   cadence (`cadence`): its criteria's, or what the lookback window shows when the sensor now reports at
   least twice as often (1-minute bridge readings after criteria learned from a 15-minute export).
4. Events change only where a method fired or an event is open (anomaly.events.observe).
5. After commit: the `$A` alert frames of every sensor go to the bridge's outbox in one Redis push.

`run_detection` evaluates the target minute (now - ANOMALY_DETECT_DELAY_MINUTES) and every minute of the
catch-up window nobody evaluated yet (a stalled worker, an expired message), oldest first, under a Redis
lock so two runs never overlap.

`evaluate_minute(minute, scope)` is steps 2-4 alone: the replay over history (anomaly.services.replay) runs
it with a `Scope` naming its sensors and its period's criteria, and its events are marked replayed.
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
from sensors.models import Reading

from .. import criteria, events, methods
from ..metrics import DETECT_CYCLE_SECONDS, DETECT_MINUTES, LAST_MINUTE, METHOD_FIRED
from ..models import AnomalyEvent, DetectionRun, EventStatus, NightMinimum, SensorMethodSettings, Severity, Source
from . import results as results_store
from .night import last_complete_night

logger = logging.getLogger(__name__)

LOCK_KEY = "pipewatch:anomaly:detect:lock"
METRICS = ("flow", "pressure")

# {sensors} and {readings} are the scope's filters (live: active sensors; a replay: its sensor ids)
MINUTE_SQL = """
SELECT s.id, s.code, s.flow_min, s.flow_max, s.pressure_min, s.pressure_max,
       cur.flow, cur.pressure, cur.status, w.last_ts, w.first_ts, w.readings, w.flow_changed, w.pressure_changed
FROM sensors_sensor s
LEFT JOIN sensors_reading cur ON cur.sensor_id = s.id AND cur.ts = %(minute)s
LEFT JOIN (
    SELECT r.sensor_id, max(r.ts) AS last_ts, min(r.ts) AS first_ts, count(*) AS readings,
           max(CASE WHEN c.flow IS NULL OR r.flow <> c.flow THEN r.ts END) AS flow_changed,
           max(CASE WHEN c.pressure IS NULL OR r.pressure <> c.pressure THEN r.ts END) AS pressure_changed
    FROM sensors_reading r
    LEFT JOIN sensors_reading c ON c.sensor_id = r.sensor_id AND c.ts = %(minute)s
    WHERE r.ts > %(since)s AND r.ts <= %(minute)s{readings}
    GROUP BY r.sensor_id
) w ON w.sensor_id = s.id
WHERE {sensors}
ORDER BY s.id
"""
MINUTE_COLUMNS = [
    "sensor_id", "code", "flow_min", "flow_max", "pressure_min", "pressure_max", "flow", "pressure", "status",
    "last_ts", "first_ts", "readings", "flow_changed", "pressure_changed",
]  # fmt: skip


@dataclass(frozen=True)
class Scope:
    """What one evaluation covers: the live job (every active sensor, the newest live criteria, live events)
    or a replay over history (its sensors, its period's criteria version, events marked replayed)."""

    sensor_ids: tuple[int, ...] | None = None
    criteria_version: int | None = None
    replayed: bool = False


LIVE = Scope()


@dataclass
class CycleResult:
    minute: datetime
    sensors: int = 0
    fired: dict[str, int] = field(default_factory=dict)
    no_forecast: int = 0
    no_criteria: int = 0
    frames: list[bytes] = field(default_factory=list)


TIME_COLUMNS = ("last_ts", "first_ts", "flow_changed", "pressure_changed")


def _minutes_before(minute: datetime, times: pd.Series) -> np.ndarray:
    """(minute - times) in minutes as floats; NaN where a time is missing (times: UTC datetime64)."""
    return np.asarray((pd.Timestamp(minute) - times).dt.total_seconds() / 60.0, dtype=float)


def load_minute(minute: datetime, scope: Scope = LIVE) -> pd.DataFrame:
    since = minute - timedelta(minutes=settings.ANOMALY_LOOKBACK_MINUTES)
    adapt = connection.ops.adapt_datetimefield_value  # raw SQL: the backend's own datetime form (SQLite: text)
    params: dict[str, Any] = {"minute": adapt(minute), "since": adapt(since)}
    if scope.sensor_ids is None:
        sql = MINUTE_SQL.format(sensors="s.active", readings="")
    else:  # one named placeholder per sensor (a replay names a few): portable, SQLite has no "= ANY(array)"
        names = {f"sensor{index}": sensor for index, sensor in enumerate(scope.sensor_ids)}
        params |= names
        listed = ", ".join(f"%({name})s" for name in names)
        sql = MINUTE_SQL.format(sensors=f"s.id IN ({listed})", readings=f" AND r.sensor_id IN ({listed})")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        frame = pd.DataFrame(cursor.fetchall(), columns=MINUTE_COLUMNS)
    for column in ("flow", "pressure", "status", "flow_min", "flow_max", "pressure_min", "pressure_max", "readings"):
        frame[column] = pd.to_numeric(frame[column]).astype(float)
    for column in TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    lookback = float(settings.ANOMALY_LOOKBACK_MINUTES)
    frame["since_reading"] = np.nan_to_num(_minutes_before(minute, frame["last_ts"]), nan=lookback)
    frame["window_minutes"] = _minutes_before(minute, frame["first_ts"]) - frame["since_reading"]
    since_first = _minutes_before(minute, frame["first_ts"]) + 1
    for metric in METRICS:
        changed = _minutes_before(minute, frame[f"{metric}_changed"])
        frame[f"{metric}_flat"] = np.where(frame[metric].isna(), 0, np.where(np.isnan(changed), since_first, changed))
    return frame


_criteria_cache: dict[tuple[int, bool, int, bool], pd.DataFrame] = {}


def _per_metric(rows: pd.DataFrame) -> pd.DataFrame:
    """Long rows (sensor_id, metric, columns...) as one row per sensor with `flow_<column>`, `pressure_<column>`."""
    parts = [
        rows[rows["metric"] == metric].drop(columns=["metric"]).set_index("sensor_id").add_prefix(f"{metric}_")
        for metric in METRICS
    ]
    return pd.concat(parts, axis=1)


def criteria_for(minute: datetime, version_id: int | None = None) -> pd.DataFrame:
    """Criteria for this minute's slot, one row per sensor (`flow_median`, `pressure_upper`, ...), cached per
    process until a newer version exists (or the given version's: a replayed period's)."""
    if version_id is None:
        latest = criteria.ensure_criteria()
        version, given = (latest.pk if latest else 0), False
    else:
        version, given = version_id, True
    local = timezone.localtime(minute)
    key = (version, given, local.hour, local.weekday() >= 5)
    if key not in _criteria_cache:
        _criteria_cache.clear()
        _criteria_cache[key] = _per_metric(criteria.current_rows(minute, version_id).drop(columns=["weekend"]))
    return _criteria_cache[key]


def forecasts_for(minute: datetime) -> pd.DataFrame:
    """The latest issue's forecast for this hour, one row per sensor (`flow_forecast`, ...; none: no_forecast)."""
    hour = minute.replace(minute=0, second=0, microsecond=0)
    issues = Forecast.objects.filter(target=hour, issued_at__lte=minute)
    issued = issues.aggregate(latest=Max("issued_at"))["latest"]
    columns = ("sensor_id", "metric", "value", "lower", "upper")
    rows = issues.filter(issued_at=issued).values_list(*columns) if issued else []
    frame = pd.DataFrame(list(rows), columns=["sensor_id", "metric", "forecast", "forecast_lower", "forecast_upper"])
    return _per_metric(frame)


def nights_for(minute: datetime) -> pd.DataFrame:
    rows = NightMinimum.objects.filter(night=last_complete_night(minute)).values_list(
        "sensor_id", "streak", "min_flow", "baseline"
    )
    frame = pd.DataFrame(list(rows), columns=["sensor_id", "streak", "night_min", "night_baseline_used"])
    return frame.set_index("sensor_id")


SETTING_COLUMNS = [
    "sensor_id", "system_enabled", "value_enabled", "predict_enabled", "night_enabled", "value_k", "gap_minutes",
    "stuck_minutes", "night_nights", "severity",
]  # fmt: skip


def settings_for() -> pd.DataFrame:
    rows = SensorMethodSettings.objects.values_list(*SETTING_COLUMNS)
    return pd.DataFrame(list(rows), columns=SETTING_COLUMNS).set_index("sensor_id")


def _column(frame: pd.DataFrame, name: str, default: float) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), default, dtype=float)
    values = frame[name]
    if not pd.api.types.is_float_dtype(values):  # object columns (an empty join, None) need the slow path
        values = pd.to_numeric(values, errors="coerce")
    array = values.to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isnan(array), default, array)


def cadence_of(frame: pd.DataFrame) -> np.ndarray:
    """Minutes between the sensor's readings, per row of the minute frame.

    The criteria's cadence (learned from the data they were built from); where the lookback window shows
    the sensor reporting at least twice as often (a faster feed since: the 1-minute bridge after criteria
    from a 15-minute export), or there are no criteria, the window's mean interval (3 readings or more).
    Where neither is known, 1 minute: the serial bridge's cadence.
    """
    learned = _column(frame, "flow_cadence_minutes", np.nan)
    readings = _column(frame, "readings", 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.where(readings >= 3, _column(frame, "window_minutes", np.nan) / (readings - 1), np.nan)
    observed = np.maximum(np.round(observed), 1)
    faster = np.isnan(learned) | (observed <= learned / 2)
    cadence = np.where(faster & ~np.isnan(observed), observed, learned)
    return np.where(np.isnan(cadence), 1.0, cadence)


def stuck_limits(frame: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(readings, minutes) before `metric` counts as stuck for each sensor of the prepared frame."""
    return methods.stuck_limits(
        stuck_minutes=_column(frame, "stuck_minutes", settings.ANOMALY_STUCK_MINUTES),
        stuck_readings=settings.ANOMALY_STUCK_READINGS,
        max_flat_run=_column(frame, f"{metric}_max_flat_run", 0),
        cadence=_column(frame, "cadence", 1),
        lookback_minutes=settings.ANOMALY_LOOKBACK_MINUTES,
    )


def count_flat_readings(minute: datetime, frame: pd.DataFrame) -> None:
    """`{metric}_flat_readings`: how many readings the current run of identical values spans (in the window).

    Counted only for sensors whose value has not changed for the stuck limit's minutes — no others can be
    stuck, so a healthy 1-minute network needs no query; at 5 or 15 minutes it is one small query per cycle.
    """
    candidates = np.zeros(len(frame), dtype=bool)
    for metric in METRICS:
        frame[f"{metric}_flat_readings"] = np.nan
        candidates |= np.asarray(frame[f"{metric}_flat"], dtype=float) >= stuck_limits(frame, metric)[1]
    if not candidates.any():
        return
    since = minute - timedelta(minutes=settings.ANOMALY_LOOKBACK_MINUTES)
    chosen = frame.loc[candidates, ["sensor_id", "flow_changed", "pressure_changed"]]
    rows = Reading.objects.filter(sensor_id__in=chosen["sensor_id"].tolist(), ts__gt=since, ts__lte=minute).values_list(
        "sensor_id", "ts"
    )
    window = pd.DataFrame(list(rows), columns=["sensor_id", "ts"]).merge(chosen, on="sensor_id")
    ts = pd.to_datetime(window["ts"], utc=True)
    for metric in METRICS:
        changed = pd.to_datetime(window[f"{metric}_changed"], utc=True)
        in_run = changed.isna() | (ts > changed)  # no different value in the window: all of it is the run
        counts = in_run.groupby(window["sensor_id"]).sum()
        frame.loc[candidates, f"{metric}_flat_readings"] = chosen["sensor_id"].map(counts).fillna(0).to_numpy()


def evaluate(frame: pd.DataFrame) -> dict[str, dict[str, methods.MethodResult]]:
    """Run every method over the prepared frame (one row per sensor); see `prepare` for its columns."""
    results: dict[str, dict[str, methods.MethodResult]] = {}
    cadence = _column(frame, "cadence", 1)
    gap = methods.gap_limit(_column(frame, "gap_minutes", settings.ANOMALY_GAP_MINUTES), cadence)
    for metric in METRICS:
        value = np.asarray(frame[metric], dtype=float)
        stuck_readings, stuck_minutes = stuck_limits(frame, metric)
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
                flat_readings=_column(frame, f"{metric}_flat_readings", np.nan),
                physical_min=np.asarray(frame[f"{metric}_min"], dtype=float),
                physical_max=np.asarray(frame[f"{metric}_max"], dtype=float),
                gap_minutes=gap,
                stuck_minutes=stuck_minutes,
                stuck_readings=stuck_readings,
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
                forecast_lower=_column(frame, f"{metric}_forecast_lower", np.nan),
                forecast_upper=_column(frame, f"{metric}_forecast_upper", np.nan),
                band_k=settings.ANOMALY_RESIDUAL_K,
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


def prepare(minute: datetime, scope: Scope = LIVE) -> pd.DataFrame:
    """One row per sensor of the scope with everything the methods need for this minute."""
    frame = load_minute(minute, scope)
    # per-sensor tables joined on the sensor in one step (each pandas merge costs ~5 ms, whatever its size)
    tables = [criteria_for(minute, scope.criteria_version), forecasts_for(minute), nights_for(minute), settings_for()]
    joined = frame.set_index("sensor_id", drop=False).join([table for table in tables if len(table)], how="left")
    frame = joined.reset_index(drop=True)
    frame["cadence"] = cadence_of(frame)
    count_flat_readings(minute, frame)
    return frame


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
            "flat_readings": number(f"{metric}_flat_readings"),
            "cadence_minutes": number("cadence"),
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


def apply_events(
    minute: datetime, frame: pd.DataFrame, results: dict[str, dict[str, methods.MethodResult]], scope: Scope = LIVE
) -> int:
    """Events change where a method fired or an unresolved event may need closing (events.observe_many)."""
    pending = AnomalyEvent.objects.filter(source=Source.SENSOR, replayed=scope.replayed).exclude(
        status=EventStatus.RESOLVED
    )
    if scope.sensor_ids is not None:
        pending = pending.filter(sensor_id__in=scope.sensor_ids)
    unresolved = list(pending.values_list("sensor_id", "subject", "metric", "method"))
    open_keys = {(sensor, metric, method) for sensor, _, metric, method in unresolved}
    position = {int(sensor): index for index, sensor in enumerate(frame["sensor_id"])}
    cadence = _column(frame, "cadence", 1)
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
            if not indices:
                continue  # most methods, most minutes
            # one slice per method as plain rows, not one .iloc per row (pandas row access is ~100 µs; to_dict
            # reads column by column, ~12 ms for the frame's ~60 columns)
            records = [dict(zip(frame.columns, row, strict=True)) for row in frame.iloc[indices].to_numpy(object)]
            for index, row in zip(indices, records, strict=True):
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
                        clean_minutes=events.clean_minutes_at(cadence[index]),
                    )
                )
    return events.observe_many(source=Source.SENSOR, at=minute, observations=observations, replayed=scope.replayed)


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


def minute_flags(
    frame: pd.DataFrame, results: dict[str, dict[str, methods.MethodResult]]
) -> dict[str, tuple[str, str]]:
    """sensor code -> (flow flags, pressure flags), the digits of the alert frame, for every evaluated sensor."""
    flow_flags = methods.flags(results["flow"], "flow")
    pressure_flags = methods.flags(results["pressure"], "pressure")
    return {
        str(code): (str(flow), str(pressure))
        for code, flow, pressure in zip(frame["code"], flow_flags, pressure_flags, strict=True)
    }


def _hand_over_flags(minute: datetime, flags: dict[str, tuple[str, str]]) -> None:
    """Give sensors the minute's flags for the 10-minute server frame (a lost minute shows as zeros)."""
    from sensors.predictions import set_minute_flags

    try:
        set_minute_flags(minute, flags)
    except redis.RedisError as exc:
        logger.warning("detection flags of %s not handed to the server frame: %s", minute, exc)


def evaluate_minute(
    minute: datetime, scope: Scope = LIVE
) -> tuple[pd.DataFrame, dict[str, dict[str, methods.MethodResult]]]:
    """Steps 2-4 of the cycle for one minute (the caller owns the transaction): the frame and the results."""
    frame = prepare(minute, scope)
    results = evaluate(frame)
    apply_events(minute, frame, results, scope)
    return frame, results


def detect_minute(minute: datetime) -> CycleResult | None:
    """Evaluate one minute for every active sensor, once (see the module docstring); None if already done."""
    started = time.perf_counter()
    started_at = timezone.now()
    with transaction.atomic():
        try:
            # only the claim belongs in this savepoint: any other integrity error fails the cycle (and the task)
            with transaction.atomic():
                run = DetectionRun.objects.create(minute=minute, started_at=started_at, finished_at=started_at)
        except IntegrityError:
            if not DetectionRun.objects.filter(minute=minute).exists():
                raise
            logger.info("minute %s was already evaluated", minute)
            return None
        frame, results = evaluate_minute(minute)
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
        if len(frame):
            flags = minute_flags(frame, results)
            transaction.on_commit(lambda: _hand_over_flags(minute, flags))
            results_store.store_results(minute, frame, results)
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
