"""Criteria: what normal looks like for each sensor, metric and hour of day, computed from readings.

`compute_criteria(readings)` is pure pandas over a DataFrame (sensor, ts, flow, pressure): the same code
builds criteria from the initial data file, from the database and inside the evaluation. Per sensor,
metric, local hour of day and day type (weekday or weekend, whose morning peaks differ):
1. robust centre and spread: median, MAD, quartiles;
2. the value band: the wider of median +- k robust sigma and the IQR fences (q1 - f IQR, q3 + f IQR), so
   neither a skewed nor a peaky hour produces false alarms;
3. the residual band for the forecast: readings minus their own hourly mean (what an hourly forecast
   predicts at best), widened by the spread of the hourly mean across days (what a forecast gets wrong);
4. the longest flat run (identical consecutive readings) seen, per sensor and metric, in readings;
5. the night baseline (flow): the median over nights of the night's lowest 10-minute mean (22:00-05:00);
6. the cadence: the median minutes between the sensor's latest readings (1 from the serial bridge, 5 or 15
   from a SCADA export). Flat runs and night blocks are counted in readings at that cadence, and detection
   judges gaps and stuck runs with it (anomaly.methods.gap_limit, stuck_limits).
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min, QuerySet
from django.utils import timezone

from sensors.models import Reading, Sensor

from .detectors import MAD_TO_SIGMA
from .models import Criteria, CriteriaSource, CriteriaVersion

logger = logging.getLogger(__name__)

METRICS = ("flow", "pressure")
NIGHT_START_HOUR, NIGHT_END_HOUR = 22, 5
NIGHT_BLOCK = "10min"
NIGHT_BLOCK_MINUTES = 10
# The cadence is read from a sensor's latest intervals (the feed as it is now: history imported at 15 minutes
# followed by the 1-minute bridge gives 1); 100 intervals are ~2 hours at 1 minute, ~1 day at 15.
CADENCE_INTERVALS = 100
SLOT = ["sensor", "weekend", "hour"]  # criteria differ by hour of day and by weekday/weekend
REQUIRED_COLUMNS = ("sensor", "ts", "flow", "pressure")
SENSOR_BATCH = 25  # sensors per database read: 90 days x 25 sensors ~ 3.2M rows, ~200 MB in pandas


class CriteriaError(Exception):
    """The data cannot give criteria (missing file or columns, no usable rows)."""


@dataclass(frozen=True)
class Parameters:
    value_k: float
    iqr_fence: float
    residual_k: float

    @classmethod
    def from_settings(cls) -> Parameters:
        return cls(
            value_k=settings.ANOMALY_VALUE_K,
            iqr_fence=settings.ANOMALY_IQR_FENCE,
            residual_k=settings.ANOMALY_RESIDUAL_K,
        )


def local_times(ts: pd.Series) -> pd.Series:
    return ts.dt.tz_convert(settings.TIME_ZONE)


def night_of(local: pd.Series) -> pd.Series:
    """The evening a night began (22:00-05:00 belongs to the date at 22:00); NaT outside the night."""
    hours = local.dt.hour
    in_night = (hours >= NIGHT_START_HOUR) | (hours < NIGHT_END_HOUR)
    evening = (local - pd.Timedelta(hours=NIGHT_END_HOUR)).dt.normalize().dt.date
    return evening.where(in_night)


def cadences(readings: pd.DataFrame) -> pd.Series:
    """Per sensor: the median interval between its latest CADENCE_INTERVALS + 1 readings, whole minutes, >= 1."""
    frame = readings[["sensor", "ts"]].sort_values(["sensor", "ts"])
    minutes = (frame["ts"].diff().dt.total_seconds() / 60).where(frame["sensor"].eq(frame["sensor"].shift()))
    latest = minutes.groupby(frame["sensor"]).tail(CADENCE_INTERVALS)
    median = latest.groupby(frame["sensor"]).median()
    return median.reindex(frame["sensor"].unique()).fillna(1).round().clip(lower=1).astype(int)


def min_block_samples(cadence: np.ndarray | pd.Series | float) -> np.ndarray:
    """Readings a 10-minute night block needs to count: half of what it holds at the cadence.

    5 at 1 minute (a block with fewer says little about the night); 1 from a 5-minute cadence on, where a
    block holds at most 2 readings: its mean is the readings that exist, never minutes made up between them.
    """
    return np.maximum(1, np.ceil(NIGHT_BLOCK_MINUTES / np.asarray(cadence, dtype=float) / 2)).astype(int)


def night_minima(readings: pd.DataFrame, cadence: pd.Series | None = None) -> pd.DataFrame:
    """Per sensor and night: the lowest 10-minute mean flow (blocks with min_block_samples readings at the
    sensor's cadence; `cadence` per sensor code, inferred from the readings when not given)."""
    cadence = cadences(readings) if cadence is None else cadence
    local = local_times(readings["ts"])
    frame = pd.DataFrame(
        {"sensor": readings["sensor"], "block": local.dt.floor(NIGHT_BLOCK), "night": night_of(local)}
    ).assign(flow=readings["flow"].to_numpy())
    frame = frame.dropna(subset=["night"])
    blocks = frame.groupby(["sensor", "night", "block"])["flow"].agg(["mean", "count"]).reset_index()
    needed = min_block_samples(blocks["sensor"].map(cadence).fillna(1))
    blocks = blocks[blocks["count"] >= needed]
    return blocks.groupby(["sensor", "night"])["mean"].agg(min_flow="min", blocks="count").reset_index()


def longest_flat_runs(readings: pd.DataFrame, metric: str, cadence: pd.Series) -> pd.Series:
    """Per sensor: the longest run of consecutive readings (at most the sensor's cadence apart) with an
    identical value, in readings."""
    frame = readings[["sensor", "ts", metric]].sort_values(["sensor", "ts"])
    same_sensor = frame["sensor"].eq(frame["sensor"].shift())
    step = pd.to_timedelta(frame["sensor"].map(cadence).fillna(1), unit="min")
    continues = same_sensor & frame[metric].eq(frame[metric].shift()) & frame["ts"].diff().le(step)
    run_id = (~continues).cumsum()
    run_length = continues.groupby(run_id).transform("size")
    return run_length.groupby(frame["sensor"]).max().astype(int)


def compute_criteria(readings: pd.DataFrame, params: Parameters) -> pd.DataFrame:
    """One row per (sensor, metric, hour) with the columns of the Criteria model (see module docstring)."""
    missing = [column for column in REQUIRED_COLUMNS if column not in readings.columns]
    if missing:
        raise CriteriaError(f"readings lack column(s): {', '.join(missing)}")
    local = local_times(readings["ts"])
    keys = pd.DataFrame(
        {
            "sensor": readings["sensor"].to_numpy(),
            "weekend": (local.dt.day_of_week >= 5).to_numpy(),
            "hour": local.dt.hour.to_numpy(),
            "day": local.dt.date.to_numpy(),
        }
    )
    cadence = cadences(readings)
    nights = night_minima(readings, cadence)
    baselines = nights.groupby("sensor")["min_flow"].median()
    frames = []
    for metric in METRICS:
        frame = keys.assign(value=readings[metric].to_numpy()).dropna(subset=["value"])
        grouped = frame.groupby(SLOT)["value"]
        stats = grouped.agg(samples="size", median="median").reset_index()
        quartiles = grouped.quantile([0.25, 0.75]).unstack()
        stats["q1"] = quartiles[0.25].to_numpy()
        stats["q3"] = quartiles[0.75].to_numpy()
        frame = frame.merge(stats[[*SLOT, "median"]], on=SLOT)
        frame["deviation"] = (frame["value"] - frame["median"]).abs()
        stats["mad"] = frame.groupby(SLOT)["deviation"].median().to_numpy()

        # residual of a perfect hourly forecast, plus how much the hourly mean itself moves between days
        hourly_mean = frame.groupby([*SLOT, "day"])["value"].transform("mean")
        frame["residual"] = frame["value"] - hourly_mean
        residual = frame.groupby(SLOT)["residual"]
        within_centre = residual.median()
        within = (frame["residual"] - frame.groupby(SLOT)["residual"].transform("median")).abs()
        within_mad = within.groupby([frame[key] for key in SLOT]).median()
        day_means = frame.groupby([*SLOT, "day"])["value"].mean()
        between_mad = day_means.groupby(level=SLOT).apply(lambda x: float((x - x.median()).abs().median()))
        residual_scale = MAD_TO_SIGMA * np.sqrt(within_mad**2 + between_mad.reindex(within_mad.index).fillna(0) ** 2)
        stats["residual_lower"] = (within_centre - params.residual_k * residual_scale).to_numpy()
        stats["residual_upper"] = (within_centre + params.residual_k * residual_scale).to_numpy()

        sigma = MAD_TO_SIGMA * stats["mad"]
        iqr = stats["q3"] - stats["q1"]
        stats["lower"] = np.minimum(stats["median"] - params.value_k * sigma, stats["q1"] - params.iqr_fence * iqr)
        stats["upper"] = np.maximum(stats["median"] + params.value_k * sigma, stats["q3"] + params.iqr_fence * iqr)
        flat_runs = longest_flat_runs(readings, metric, cadence)
        stats["max_flat_run"] = stats["sensor"].map(flat_runs).fillna(0).astype(int)
        stats["night_baseline"] = stats["sensor"].map(baselines) if metric == "flow" else np.nan
        stats["cadence_minutes"] = stats["sensor"].map(cadence).astype(int)
        stats["metric"] = metric
        frames.append(stats)
    return pd.concat(frames, ignore_index=True)


LEGACY_COLUMNS = ["sensor", "minute", "flow", "pressure", "status"]


def read_legacy_file(handle: TextIO) -> pd.DataFrame:
    """The old system's `initial_data.txt`: `<sensor> <YYMMDDhhmm> <flow> <pressure> [<status>]` per line.

    Whitespace separated, one reading per line, times in the devices' zone (SENSORS_DEVICE_TIME_ZONE)
    as on the serial line; `#` starts a comment. A line that does not parse is skipped (and counted).
    """
    from sensors.settings import frame_layout

    frame = pd.read_csv(
        handle, sep=r"\s+", header=None, names=LEGACY_COLUMNS, dtype={"sensor": str, "minute": str}, comment="#"
    )
    local = pd.to_datetime(frame["minute"], format="%y%m%d%H%M", errors="coerce")
    frame["ts"] = local.dt.tz_localize(frame_layout().time_zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert(UTC)
    frame["status"] = frame["status"].fillna(0)
    return frame.drop(columns=["minute"])


def read_readings_file(path: Path) -> pd.DataFrame:
    """The initial data file, in either layout (docs/anomaly-detection.md):

    - CSV (optionally .gz) with a header naming sensor, ts (ISO 8601 with offset), flow, pressure;
    - the old system's `initial_data.txt` layout (read_legacy_file), recognised by its first data line.
    """
    if not path.exists():
        raise CriteriaError(f"criteria data file {path} does not exist (set ANOMALY_CRITERIA_FILE)")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        first = next((line for line in handle if line.strip() and not line.startswith("#")), "")
        handle.seek(0)
        legacy = "," not in first and len(first.split()) in {4, 5}
        frame = read_legacy_file(handle) if legacy else pd.read_csv(handle, dtype={"sensor": str})
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise CriteriaError(f"{path} lacks column(s): {', '.join(missing)}")
    frame["sensor"] = frame["sensor"].str.zfill(3)
    if not legacy:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True, errors="coerce")
    frame["flow"] = pd.to_numeric(frame["flow"], errors="coerce")
    frame["pressure"] = pd.to_numeric(frame["pressure"], errors="coerce")
    bad = int(frame[["ts", "flow", "pressure"]].isna().any(axis=1).sum())
    if bad:
        logger.warning("%s: %d row(s) with an unparseable time or value skipped", path, bad)
    return frame.dropna(subset=["ts", "flow", "pressure"])


def read_readings_db(sensor_ids: list[int], start: datetime, end: datetime) -> pd.DataFrame:
    """Readings of the given sensors in [start, end) as a DataFrame (tuples, no model instances)."""
    rows = Reading.objects.filter(sensor_id__in=sensor_ids, ts__gte=start, ts__lt=end).values_list(
        "sensor__code", "ts", "flow", "pressure"
    )
    frame = pd.DataFrame(list(rows.iterator(chunk_size=20000)), columns=["sensor", "ts", "flow", "pressure"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def save_version(
    rows: pd.DataFrame,
    *,
    source: str,
    detail: str,
    data_start: datetime,
    data_end: datetime,
    readings: int,
    parameters: dict[str, object] | None = None,
) -> CriteriaVersion:
    """Store one version; rows for codes that are not registered sensors are skipped and logged."""
    ids = dict(Sensor.objects.filter(code__in=rows["sensor"].unique().tolist()).values_list("code", "id"))
    unknown = sorted(set(rows["sensor"]) - set(ids))
    if unknown:
        logger.warning("criteria: %d code(s) in the data are not registered sensors: %s", len(unknown), unknown[:20])
    rows = rows[rows["sensor"].isin(ids)]
    with transaction.atomic():
        version = CriteriaVersion.objects.create(
            source=source,
            source_detail=detail,
            data_start=data_start,
            data_end=data_end,
            readings=readings,
            sensors=rows["sensor"].nunique(),
            parameters=asdict(Parameters.from_settings()) | {"skipped_codes": unknown[:100]} | (parameters or {}),
        )
        fields = [
            "samples", "median", "mad", "q1", "q3", "lower", "upper",
            "residual_lower", "residual_upper", "max_flat_run", "cadence_minutes",
        ]  # fmt: skip
        Criteria.objects.bulk_create(
            [
                Criteria(
                    version=version,
                    sensor_id=ids[row["sensor"]],
                    metric=row["metric"],
                    hour=int(row["hour"]),
                    weekend=bool(row["weekend"]),
                    night_baseline=None if pd.isna(row["night_baseline"]) else float(row["night_baseline"]),
                    **{field: row[field] for field in fields},
                )
                for row in rows.to_dict("records")
            ],
            batch_size=5000,
        )
    logger.info("criteria v%s from %s: %s sensors, %s readings", version.pk, source, version.sensors, readings)
    return version


def build_from_frame(frame: pd.DataFrame, *, source: str, detail: str) -> CriteriaVersion:
    if frame.empty:
        raise CriteriaError(f"no readings to build criteria from ({detail})")
    rows = compute_criteria(frame, Parameters.from_settings())
    return save_version(
        rows,
        source=source,
        detail=detail,
        data_start=frame["ts"].min().to_pydatetime(),
        data_end=frame["ts"].max().to_pydatetime(),
        readings=len(frame),
    )


def build_from_file(path: Path | None = None, sensor_codes: list[str] | None = None) -> CriteriaVersion:
    path = path or settings.ANOMALY_CRITERIA_FILE
    frame = read_readings_file(path)
    if sensor_codes:
        frame = frame[frame["sensor"].isin(sensor_codes)]
    return build_from_frame(frame, source=CriteriaSource.FILE, detail=str(path))


def database_span() -> tuple[datetime, datetime] | None:
    span = Reading.objects.aggregate(first=Min("ts"), last=Max("ts"))
    return (span["first"], span["last"]) if span["first"] is not None else None


def build_from_database(sensor_codes: list[str] | None = None, days: int | None = None) -> CriteriaVersion:
    """Criteria from the last `days` days of readings (default ANOMALY_CRITERIA_DB_DAYS), sensor batch by batch."""
    span = database_span()
    if span is None:
        raise CriteriaError("no readings in the database")
    end = span[1] + pd.Timedelta(minutes=1)
    start = end - pd.Timedelta(days=days or settings.ANOMALY_CRITERIA_DB_DAYS)
    sensors = Sensor.objects.order_by("id")
    if sensor_codes:
        sensors = sensors.filter(code__in=sensor_codes)
    ids = list(sensors.values_list("id", flat=True))
    rows = compute_from_database(ids, start, end)
    if rows.empty:
        raise CriteriaError(f"no readings between {start} and {end}")
    count = Reading.objects.filter(sensor_id__in=ids, ts__gte=start, ts__lt=end).count()
    return save_version(
        rows, source=CriteriaSource.DATABASE, detail=f"last {days or settings.ANOMALY_CRITERIA_DB_DAYS} days",
        data_start=start, data_end=end, readings=count,
    )  # fmt: skip


def compute_from_database(
    sensor_ids: list[int], start: datetime, end: datetime, *, begun_by: datetime | None = None
) -> pd.DataFrame:
    """compute_criteria over the readings in [start, end), SENSOR_BATCH sensors at a time (bounded memory).

    With `begun_by`, a sensor counts only if its readings there start by then (enough history to judge it).
    """
    parts = []
    for batch in range(0, len(sensor_ids), SENSOR_BATCH):
        frame = read_readings_db(sensor_ids[batch : batch + SENSOR_BATCH], start, end)
        if begun_by is not None and not frame.empty:
            frame = frame[frame.groupby("sensor")["ts"].transform("min") <= begun_by]
        if not frame.empty:
            parts.append(compute_criteria(frame, Parameters.from_settings()))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def build_criteria(sensor_codes: list[str] | None = None, from_file: Path | None = None) -> CriteriaVersion:
    """The right source: an explicit file; the database once it holds enough days; else the initial file."""
    if from_file is not None:
        return build_from_file(from_file, sensor_codes)
    if history_is_enough(database_span()):
        return build_from_database(sensor_codes)
    return build_from_file(None, sensor_codes)


def history_is_enough(span: tuple[datetime, datetime] | None) -> bool:
    """The database holds ANOMALY_CRITERIA_DB_DAYS (3 months) of readings: it replaces the initial file."""
    return span is not None and span[1] - span[0] >= pd.Timedelta(days=settings.ANOMALY_CRITERIA_DB_DAYS)


def rebuild_reason(now: datetime) -> str:
    """Why a new version is due now ("" if none). Checked daily (anomaly.rebuild_criteria):

    1. no criteria yet: build them (file or database);
    2. the newest version came from the initial file and the database now holds 3 months of readings:
       switch to database criteria the day that becomes true, not at the next calendar quarter;
    3. the newest version is ANOMALY_CRITERIA_REBUILD_MONTHS (3) months old: the quarterly rebuild,
       counted from the previous build.
    """
    latest = live_versions().order_by("-id").first()
    if latest is None:
        return "no criteria yet"
    if latest.source == CriteriaSource.FILE and history_is_enough(database_span()):
        return f"{settings.ANOMALY_CRITERIA_DB_DAYS} days of readings in the database: switching from the file"
    due = pd.Timestamp(latest.created_at) + pd.DateOffset(months=settings.ANOMALY_CRITERIA_REBUILD_MONTHS)
    if pd.Timestamp(now) >= due:
        return f"v{latest.pk} is {settings.ANOMALY_CRITERIA_REBUILD_MONTHS} months old"
    return ""


def rebuild_if_due(now: datetime | None = None) -> CriteriaVersion | None:
    """The daily check: build a new version when rebuild_reason says so; None otherwise."""
    reason = rebuild_reason(now or timezone.now())
    if not reason:
        return None
    logger.info("criteria rebuild: %s", reason)
    return build_criteria()


def ensure_criteria() -> CriteriaVersion | None:
    """The first start: with no criteria at all, build them from the initial data file (once)."""
    latest = live_versions().order_by("-id").first()
    if latest is not None:
        return latest
    try:
        return build_criteria()
    except CriteriaError as exc:
        logger.warning("no criteria yet and none can be built: %s", exc)
        return None


def live_versions() -> QuerySet[CriteriaVersion]:
    """The versions live detection may use: a replay's versions judge their own period of history only."""
    return CriteriaVersion.objects.exclude(source=CriteriaSource.REPLAY)


def live_rows() -> QuerySet[Criteria]:
    return Criteria.objects.exclude(version__source=CriteriaSource.REPLAY)


CURRENT_COLUMNS = [
    "sensor_id", "metric", "weekend", "median", "mad", "lower", "upper", "residual_lower", "residual_upper",
    "max_flat_run", "night_baseline", "cadence_minutes", "version_id",
]  # fmt: skip


def current_rows(moment: datetime, version_id: int | None = None) -> pd.DataFrame:
    """For every sensor and metric, the row for this moment's slot of the newest live version that covers the
    sensor (or of the given version: a replayed period's)."""
    local = timezone.localtime(moment)
    rows = live_rows() if version_id is None else Criteria.objects.filter(version_id=version_id)
    rows = rows.filter(hour=local.hour, weekend=local.weekday() >= 5).order_by().values_list(*CURRENT_COLUMNS)
    frame = pd.DataFrame(list(rows), columns=CURRENT_COLUMNS)
    frame = frame.sort_values("version_id").drop_duplicates(["sensor_id", "metric"], keep="last")
    return frame.reset_index(drop=True)


def sensor_rows(sensor_id: int) -> list[Criteria]:
    """One sensor's criteria rows (both metrics, every hour and day type) of the newest live version covering it."""
    newest = live_rows().filter(sensor_id=sensor_id).aggregate(newest=Max("version_id"))["newest"]
    if newest is None:
        return []
    return list(Criteria.objects.filter(sensor_id=sensor_id, version_id=newest))
