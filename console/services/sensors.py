"""What the sensors pages show: the table of every sensor, and one sensor's charts, nights and frames.

Series come from the database in time buckets sized to the chart (charts.bucket_seconds). Buckets of an
hour or more read forecasting's hourly roll-up (HourlyMean: 24 rows a day instead of 1,440) where it has
the hours, and the minute readings only for the hours it lacks (the current hour, history past its
retention).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import redis
from django.conf import settings
from django.db.models import Avg, Count, F, Max, Min, Q, Sum
from django.utils import timezone

from anomaly.criteria import sensor_rows
from anomaly.models import AnomalyEvent, EventStatus, NightMinimum
from forecasting.models import Forecast, HourlyMean
from forecasting.services.prediction import daily_rows
from sensors.models import Metric, Reading, Sensor
from sensors.outbox import sent_frames
from sensors.services.queries import Bucket, latest_readings

from .charts import Chart, bucket_seconds, column, epoch_seconds, floor_time

logger = logging.getLogger(__name__)

UNITS = {Metric.FLOW: "m³/h", Metric.PRESSURE: "bar"}
SORTS = ("code", "name", "age", "flow", "pressure", "events", "status")
PAGE_SIZE = 100
NIGHTS_SHOWN = 30
FORECAST_SHOWN = timedelta(days=7)


def silent_after() -> timedelta:
    """A sensor is silent once its last reading is older than the gap the system method fires on."""
    return timedelta(minutes=settings.ANOMALY_GAP_MINUTES)


def open_event_counts(sensor_ids: list[int] | None = None) -> dict[int, int]:
    events = AnomalyEvent.objects.exclude(status=EventStatus.RESOLVED).filter(sensor__isnull=False)
    if sensor_ids is not None:
        events = events.filter(sensor_id__in=sensor_ids)
    return dict(events.order_by().values_list("sensor_id").annotate(n=Count("id")).values_list("sensor_id", "n"))


def status_of(active: bool, age: timedelta | None, events: int) -> str:
    if not active:
        return "inactive"
    if age is None or age > silent_after():
        return "silent"
    return "alarm" if events else "ok"


@dataclass
class SensorTable:
    rows: list[dict[str, Any]]
    total: int
    matching: int
    page: int
    pages: int
    sort: str
    query: str


def sensor_table(query: str = "", sort: str = "code", page: int = 1, now: datetime | None = None) -> SensorTable:
    """Every sensor matching `query` (code, name or location) with its latest reading, open events and status.

    Sorted (a leading "-" reverses) and paged by PAGE_SIZE; the latest readings are read for the page only
    unless the sort needs them for all.
    """
    now = now or timezone.now()
    descending = sort.startswith("-")
    key = sort.lstrip("-") if sort.lstrip("-") in SORTS else "code"
    sensors = Sensor.objects.order_by("code")
    total = sensors.count()
    if query := query.strip():
        sensors = sensors.filter(Q(code__icontains=query) | Q(name__icontains=query) | Q(location__icontains=query))
    candidates: list[dict[str, Any]] = [dict(row) for row in sensors.values("id", "code", "name", "location", "active")]
    pages = max(1, -(-len(candidates) // PAGE_SIZE))
    page = min(max(1, page), pages)
    needs_all = key not in {"code", "name"}
    if not needs_all:
        candidates.sort(key=lambda row: row[key], reverse=descending)
        candidates = candidates[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    ids = [row["id"] for row in candidates]
    latest = latest_readings(ids)
    events = open_event_counts(ids)
    for row in candidates:
        reading = latest.get(row["id"])
        row["ts"] = reading["ts"] if reading else None
        row["age"] = now - reading["ts"] if reading else None
        row["flow"] = reading["flow"] if reading else None
        row["pressure"] = reading["pressure"] if reading else None
        row["events"] = events.get(row["id"], 0)
        row["status"] = status_of(row["active"], row["age"], row["events"])
    if needs_all:
        missing = timedelta.max if key == "age" else float("-inf")

        def order(row: dict[str, Any]) -> Any:
            return row[key] if row[key] is not None else missing

        candidates.sort(key=order, reverse=descending)
        candidates = candidates[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    matching = sensors.count() if query else total
    return SensorTable(candidates, total, matching, page, pages, ("-" if descending else "") + key, query)


def _bucket_frame(rows: Any, weight: str) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(list(rows), columns=["bucket", "flow", "pressure", weight])
    if not frame.empty:
        frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame.astype({"flow": "float64", "pressure": "float64", weight: "float64"})


def _readings(sensor_id: int, start: datetime, end: datetime, seconds: int) -> pd.DataFrame:
    rows = (
        Reading.objects.filter(sensor_id=sensor_id, ts__gte=start, ts__lt=end)
        .annotate(bucket=Bucket("ts", seconds))
        .values("bucket")
        .annotate(flow=Avg("flow"), pressure=Avg("pressure"), n=Count("id"))
        .order_by("bucket")
        .values_list("bucket", "flow", "pressure", "n")
    )
    return _bucket_frame(rows, "n")


def _rollup(sensor_id: int, start: datetime, end: datetime, seconds: int) -> pd.DataFrame:
    rows = (
        HourlyMean.objects.filter(sensor_id=sensor_id, hour__gte=start, hour__lt=end)
        .annotate(bucket=Bucket("hour", seconds))
        .values("bucket")
        .annotate(flow=Avg("flow"), pressure=Avg("pressure"), n=Sum("rows"))
        .order_by("bucket")
        .values_list("bucket", "flow", "pressure", "n")
    )
    return _bucket_frame(rows, "n")


def sensor_series(sensor_id: int, start: datetime, end: datetime, seconds: int) -> pd.DataFrame:
    """Mean flow and pressure per `seconds`-wide bucket in [start, end), indexed by bucket start (UTC)."""
    parts = []
    if seconds % 3600 == 0:
        covered = HourlyMean.objects.filter(sensor_id=sensor_id, hour__gte=start, hour__lt=end).aggregate(
            first=Min("hour"), last=Max("hour")
        )
        if covered["first"] is not None:
            rolled_until = covered["last"] + timedelta(hours=1)
            parts = [
                _readings(sensor_id, start, covered["first"], seconds),
                _rollup(sensor_id, covered["first"], rolled_until, seconds),
                _readings(sensor_id, rolled_until, end, seconds),
            ]
    if not parts:
        parts = [_readings(sensor_id, start, end, seconds)]
    frame = pd.concat([part for part in parts if not part.empty]) if any(not p.empty for p in parts) else parts[0]
    if frame.empty:
        return pd.DataFrame(columns=["flow", "pressure"], index=pd.DatetimeIndex([], tz="UTC", name="bucket"))
    # a bucket straddling two sources: the reading-weighted mean of both parts
    weighted = frame.assign(flow=frame["flow"] * frame["n"], pressure=frame["pressure"] * frame["n"])
    sums = weighted.groupby("bucket")[["flow", "pressure", "n"]].sum(min_count=1)
    return sums[["flow", "pressure"]].div(sums["n"], axis=0)


def criteria_band(sensor_id: int, index: pd.DatetimeIndex) -> dict[str, pd.DataFrame]:
    """metric -> lower/upper of the newest criteria for the local hour and day type of each timestamp.

    The 48 slots of a metric (24 hours x weekday/weekend) become a lookup array indexed by
    hour + 24 * weekend: one numpy take per timestamp column, no join.
    """
    table = {metric: np.full((2, 48), np.nan) for metric in Metric.values}
    for row in sensor_rows(sensor_id):
        table[row.metric][:, row.hour + 24 * int(row.weekend)] = (row.lower, row.upper)
    local = index.tz_convert(settings.TIME_ZONE)
    position = np.asarray(local.hour) + 24 * (np.asarray(local.day_of_week) >= 5)
    return {
        metric: pd.DataFrame({"lower": values[0, position], "upper": values[1, position]}, index=index)
        for metric, values in table.items()
    }


def latest_forecast(sensor_id: int) -> tuple[datetime | None, pd.DataFrame]:
    """The newest issue of the sensor's hourly forecasts: (issued at, frame of flow/pressure by target hour)."""
    issued = Forecast.objects.filter(sensor_id=sensor_id).aggregate(latest=Max("issued_at"))["latest"]
    if issued is None:
        return None, pd.DataFrame(columns=["flow", "pressure"])
    rows = Forecast.objects.filter(sensor_id=sensor_id, issued_at=issued).values_list("target", "metric", "value")
    frame = pd.DataFrame.from_records(list(rows), columns=["target", "metric", "value"])
    frame["target"] = pd.to_datetime(frame["target"], utc=True)
    # one value per (target, metric) in an issue: pivot, not pivot_table (no aggregation, ~10x faster)
    wide = frame.pivot(index="target", columns="metric", values="value").reindex(columns=Metric.values)
    return issued, wide


def forecast_as_issued(sensor_id: int, start: datetime, end: datetime) -> pd.DataFrame:
    """Per target hour in [start, end), the newest forecast issued by then (what detection compared with)."""
    rows = Forecast.objects.filter(
        sensor_id=sensor_id, target__gte=start, target__lt=end, issued_at__lte=F("target")
    ).values_list("target", "metric", "issued_at", "value")
    frame = pd.DataFrame.from_records(list(rows), columns=["target", "metric", "issued_at", "value"])
    if frame.empty:
        return pd.DataFrame(columns=Metric.values, index=pd.DatetimeIndex([], tz="UTC"))
    frame["target"] = pd.to_datetime(frame["target"], utc=True)
    newest = frame.sort_values("issued_at").drop_duplicates(["target", "metric"], keep="last")
    return newest.pivot_table(index="target", columns="metric", values="value").reindex(columns=Metric.values)


def sensor_events(sensor_id: int, start: datetime, end: datetime, now: datetime) -> list[AnomalyEvent]:
    return list(
        AnomalyEvent.objects.filter(sensor_id=sensor_id, started_at__lt=end)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=start))
        .order_by("-started_at")[:200]
    )


def event_marks(events: list[AnomalyEvent], metric: str, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "from": int(event.started_at.timestamp()),
            "to": int((event.ended_at or max(event.last_fired_at + timedelta(minutes=1), now)).timestamp()),
            "label": f"{event.method} ({event.severity})",
            "severity": event.severity,
            "id": event.pk,
        }
        for event in events
        if event.metric == metric
    ]


def metric_chart(
    metric: str,
    *,
    observed: pd.DataFrame,
    forecast: pd.DataFrame,
    band: pd.DataFrame,
    marks: list[dict[str, Any]],
    name: str,
) -> Chart:
    """Readings (bucket means), the criteria band (its hour's lower..upper) and the forecast on one time axis."""
    index = observed.index.union(forecast.index) if not forecast.empty else observed.index
    readings = observed[metric].reindex(index) if metric in observed else pd.Series(index=index, dtype="float64")
    predicted = forecast[metric].reindex(index) if metric in forecast else pd.Series(index=index, dtype="float64")
    chart = Chart(name=name, title=f"{Metric(metric).label} ({UNITS[Metric(metric)]})", unit=UNITS[Metric(metric)])
    chart.x = epoch_seconds(index)
    chart.add("reading (bucket mean)", column(readings), color="#1d4ed8", width=1.5)
    upper = chart.add("criteria upper", column(band["upper"].reindex(index)), color="#16a34a", dash=True, width=1)
    lower = chart.add("criteria lower", column(band["lower"].reindex(index)), color="#16a34a", dash=True, width=1)
    chart.add("forecast", column(predicted), color="#c2410c", dash=True, width=1.5)
    chart.bands = [(upper, lower)]
    chart.marks = marks
    return chart


@dataclass
class SensorDetail:
    sensor: Sensor
    range_key: str
    start: datetime
    end: datetime
    bucket_seconds: int
    charts: list[Chart]
    night_chart: Chart | None
    nights: list[dict[str, Any]]
    events: list[AnomalyEvent]
    forecast_issued: datetime | None
    forecast_days: list[dict[str, Any]]  # forecasting's daily rows (seed layout): from, to, day, flow, pressure
    latest: dict[str, Any] | None
    status: str
    frames: list[dict[str, Any]] | None  # None: Redis unreachable
    criteria_missing: bool


def sensor_detail(sensor: Sensor, span: timedelta, range_key: str, now: datetime | None = None) -> SensorDetail:
    now = now or timezone.now()
    seconds = bucket_seconds(span)
    end = floor_time(now, seconds) + timedelta(seconds=seconds)
    start = end - span
    observed = sensor_series(sensor.pk, start, end, seconds)
    issued, forecast = latest_forecast(sensor.pk)
    # the chart continues into the forecast for as long as it looks back (at most the 7 days forecast)
    ahead = min(span, FORECAST_SHOWN)
    if not forecast.empty:
        forecast = forecast[(forecast.index >= pd.Timestamp(end)) & (forecast.index < pd.Timestamp(end + ahead))]
    index = observed.index.union(forecast.index) if not forecast.empty else observed.index
    bands = criteria_band(sensor.pk, pd.DatetimeIndex(index))
    events = sensor_events(sensor.pk, start, end, now)
    charts = [
        metric_chart(
            metric,
            observed=observed,
            forecast=forecast,
            band=bands[metric],
            marks=event_marks(events, metric, now),
            name=f"sensor-{metric}",
        )
        for metric in Metric.values
    ]
    nights: list[dict[str, Any]] = [
        dict(row)
        for row in NightMinimum.objects.filter(
            sensor=sensor, night__gte=(now - max(span, timedelta(days=NIGHTS_SHOWN))).date()
        )
        .order_by("night")
        .values("night", "min_flow", "baseline", "exceeded", "streak")
    ]
    night_chart = None
    if nights:
        frame = pd.DataFrame(nights)
        # a night is drawn at the local midnight that begins it (the evening's date + 1 day, 00:00)
        midnight = pd.to_datetime(frame["night"]).dt.tz_localize(settings.TIME_ZONE) + pd.Timedelta(days=1)
        night_chart = Chart(name="sensor-night", title="night-minimum flow (m³/h)", unit="m³/h")
        night_chart.x = epoch_seconds(midnight)
        night_chart.add("night minimum", column(frame["min_flow"]), color="#1d4ed8", width=1.5, points=True)
        night_chart.add("baseline", column(frame["baseline"]), color="#16a34a", dash=True, width=1)
    daily = [line.split() for line in daily_rows(sensor, issued)] if issued else []
    newest = Reading.objects.filter(sensor=sensor).order_by("-ts").values("ts", "flow", "pressure", "status").first()
    latest: dict[str, Any] | None = dict(newest) if newest else None
    age: timedelta | None = now - latest["ts"] if latest else None
    try:
        frames: list[dict[str, Any]] | None = [
            {"at": datetime.fromtimestamp(stamp, tz=timezone.get_current_timezone()), "frame": frame}
            for stamp, frame in sent_frames(sensor.code)
        ]
    except redis.RedisError as exc:
        logger.warning("sent frames unavailable: %s", exc)
        frames = None
    return SensorDetail(
        sensor=sensor,
        range_key=range_key,
        start=start,
        end=end,
        bucket_seconds=seconds,
        charts=charts,
        night_chart=night_chart,
        nights=nights[::-1],
        events=events,
        forecast_issued=issued,
        forecast_days=[
            {
                "from": datetime.strptime(first, "%y%m%d").date(),  # noqa: DTZ007 - a local calendar date
                "to": datetime.strptime(last, "%y%m%d").date(),  # noqa: DTZ007
                "day": day,
                "flow": float(flow),
                "pressure": float(pressure),
            }
            for _, first, last, day, flow, pressure in daily
        ],
        latest=latest,
        status=status_of(sensor.active, age, sum(event.status != EventStatus.RESOLVED for event in events)),
        frames=frames,
        criteria_missing=bands[Metric.FLOW]["upper"].isna().all(),
    )
