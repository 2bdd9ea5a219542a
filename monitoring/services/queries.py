"""Reads for the API: time series of host samples (raw or downsampled in the database) and snapshots.

Buckets of whole hours (`step=1h`, the console's charts of days) read the hourly roll-up (HostHour, kept
up to date by services.rollup) for the hours it holds, and the samples only for the rest: a partial first
or last hour of the range and the hours not rolled up yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any

import orjson
import redis
from django.conf import settings
from django.db.models import Avg, Count, DateTimeField, F, Func, Max, QuerySet, Sum, TextField
from django.db.models.expressions import Combinable
from django.db.models.functions import Cast
from django.utils import timezone

from ..models import Host, HostHour, HostSample
from . import store


@dataclass(frozen=True)
class Series:
    columns: tuple[str, ...]  # scalar columns: raw and downsampled
    detail: tuple[str, ...] = ()  # per-device JSON: raw samples only


SERIES = {
    "cpu": Series(("cpu_percent", "load_1", "load_5", "load_15"), ("cpu_per_core",)),
    "memory": Series(
        (
            "memory_percent",
            "memory_used_bytes",
            "memory_available_bytes",
            "memory_total_bytes",
            "swap_percent",
            "swap_used_bytes",
            "swap_total_bytes",
        )
    ),
    "disk": Series(("disk_percent", "disk_read_bytes_per_second", "disk_write_bytes_per_second"), ("disks",)),
    "network": Series(("net_sent_bytes_per_second", "net_recv_bytes_per_second"), ("interfaces",)),
}
HOUR = 3600
STEPS = {"1m": 60, "5m": 300, "1h": HOUR}
AGGREGATES = {"avg": Avg, "max": Max}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor_to(moment: datetime, seconds: int) -> datetime:
    """`moment` floored to a multiple of `seconds` since the epoch, where the database's buckets start (UTC)."""
    width = timedelta(seconds=seconds)
    return EPOCH + (moment - EPOCH) // width * width


def ceil_to(moment: datetime, seconds: int) -> datetime:
    floored = floor_to(moment, seconds)
    return floored if floored == moment else floored + timedelta(seconds=seconds)


class TimeBucket(Func):
    """The start of the `seconds`-wide bucket a timestamp falls in, computed by the database."""

    output_field = DateTimeField()

    def __init__(self, expression: Combinable | str, seconds: int) -> None:
        super().__init__(expression)
        self.seconds = int(seconds)  # from STEPS: an integer, safe to inline in the SQL

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "to_timestamp(floor(extract(epoch from %(expressions)s) / %(step)s) * %(step)s)"
        return self._as_vendor_sql(compiler, connection, template)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # '%%%%s' survives both this formatting and the backend's '%s' -> '?' placeholder rewrite.
        template = "datetime((CAST(strftime('%%%%s', %(expressions)s) AS INTEGER) / %(step)s) * %(step)s, 'unixepoch')"
        return self._as_vendor_sql(compiler, connection, template)

    def _as_vendor_sql(self, compiler: Any, connection: Any, template: str) -> Any:
        column_sql, params = compiler.compile(self.source_expressions[0])
        return template % {"expressions": column_sql, "step": self.seconds}, params


class UnknownHostError(LookupError):
    pass


def _host_id(host: str | None) -> int | None:
    """The id of the host named `host` (None: every host). Reads filter by id: `host_id = n ORDER BY ts DESC
    LIMIT k` is a walk down the (host, ts) index, where a join on the name let the planner sort all of the
    host's samples."""
    if host is None:
        return None
    host_id = Host.objects.filter(name=host).values_list("pk", flat=True).first()
    if host_id is None:
        raise UnknownHostError(host)
    return host_id


def _samples(host_id: int | None) -> QuerySet[HostSample]:
    return HostSample.objects.all() if host_id is None else HostSample.objects.filter(host_id=host_id)


def series_rows(
    series: str,
    *,
    host: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    step: str | None = None,
    agg: str = "avg",
) -> list[dict[str, Any]]:
    """The newest `limit` points in [start, end], oldest first.

    Raw: one point per sample with every column and the per-device detail. With `step`: one point per
    host and bucket (avg or max of each column, and the number of samples), grouped by the database.
    """
    spec = SERIES[series]
    host_id = _host_id(host)
    if step is None:
        queryset = _samples(host_id)
        if start is not None:
            queryset = queryset.filter(ts__gte=start)
        if end is not None:
            queryset = queryset.filter(ts__lte=end)
        return _raw_points(queryset, spec, limit)
    seconds = STEPS[step]
    end = end or timezone.now()
    start = start or end - timedelta(seconds=seconds * limit)
    # the newest `limit` of each part, then of them all (newest first, hosts by name), as one query would
    parts = _buckets(host_id, start, end, columns=spec.columns, seconds=seconds, agg=agg)
    newest = chain.from_iterable(part.order_by("-timestamp", "host_name")[:limit] for part in parts)
    rows = sorted(newest, key=lambda row: (-row["timestamp"].timestamp(), row["host_name"]))[:limit]
    rows.reverse()
    return [_point(row) for row in rows]


def _bucketed(queryset: QuerySet[HostSample], columns: Sequence[str], seconds: int, agg: str) -> QuerySet[Any]:
    """One row per host and `seconds`-wide bucket: avg or max of each column and the number of samples."""
    aggregate = AGGREGATES[agg]
    return (
        queryset.annotate(timestamp=TimeBucket("ts", seconds), host_name=F("host__name"))
        .values("host_name", "timestamp")
        .annotate(samples=Count("id"), **{column: aggregate(column) for column in columns})
    )


def _rolled_up(
    host_id: int | None, start: datetime, end: datetime, *, columns: Sequence[str], seconds: int, agg: str
) -> QuerySet[Any]:
    """The rows of `_bucketed` for the whole buckets in [start, end), from the roll-up: an hour-wide bucket is
    a stored hour as it is; a wider one the samples-weighted mean (or the max) of its hours."""
    hours = HostHour.objects.filter(hour__gte=start, hour__lt=end)
    if host_id is not None:
        hours = hours.filter(host_id=host_id)
    if seconds == HOUR:
        values = {column: F(f"{column}_{agg}") for column in columns}
        return hours.values("samples", host_name=F("host__name"), timestamp=F("hour"), **values)
    combined: dict[str, Combinable] = (
        {column: Sum(F(f"{column}_avg") * F("samples")) / Sum("samples") for column in columns}
        if agg == "avg"
        else {column: Max(f"{column}_max") for column in columns}
    )
    return (  # the sum of samples is named last, so that `samples` in the means above is still the column
        hours.annotate(timestamp=TimeBucket("hour", seconds), host_name=F("host__name"))
        .values("host_name", "timestamp")
        .annotate(**combined)
        .annotate(samples=Sum("samples"))
        .values("host_name", "timestamp", "samples", *columns)
    )


def rolled_until() -> datetime | None:
    """The end of the newest hour in the roll-up; the hours before it have been rolled up."""
    newest = HostHour.objects.aggregate(newest=Max("hour"))["newest"]
    return None if newest is None else newest + timedelta(hours=1)


def _buckets(
    host_id: int | None, start: datetime, end: datetime, *, columns: Sequence[str], seconds: int, agg: str
) -> list[QuerySet[Any]]:
    """The bucket rows of [start, end] as queries over consecutive ranges of whole buckets: the buckets the
    roll-up holds entirely from it, the rest (a partial first or last bucket, hours not rolled up yet) from
    the samples. No bucket is split between two queries."""
    samples = _samples(host_id)
    rolled = rolled_until() if seconds % HOUR == 0 else None
    first = ceil_to(start, seconds)
    last = min(floor_to(end, seconds), floor_to(rolled, seconds)) if rolled is not None else first
    if last <= first:
        return [_bucketed(samples.filter(ts__gte=start, ts__lte=end), columns, seconds, agg)]
    parts = [_rolled_up(host_id, first, last, columns=columns, seconds=seconds, agg=agg)]
    if start < first:
        parts.insert(0, _bucketed(samples.filter(ts__gte=start, ts__lt=first), columns, seconds, agg))
    return [*parts, _bucketed(samples.filter(ts__gte=last, ts__lte=end), columns, seconds, agg)]


SCALAR_COLUMNS = frozenset(column for spec in SERIES.values() for column in spec.columns)


def bucket_rows(
    columns: Sequence[str], *, host: str, start: datetime, end: datetime, seconds: int, agg: str = "avg"
) -> list[dict[str, Any]]:
    """Scalar columns of one host's samples (any of the series', read in one pass) in [start, end], in
    buckets of any width, oldest first: charts size the buckets to their width. Aggregating only the
    columns a chart draws matters on long ranges (7 days at 5 s is 121 k samples per host); buckets of whole
    hours read the roll-up (168 rows for those 7 days)."""
    unknown = sorted(set(columns) - SCALAR_COLUMNS)
    if unknown:
        raise ValueError(f"not a sample column: {', '.join(unknown)}")
    parts = _buckets(_host_id(host), start, end, columns=columns, seconds=seconds, agg=agg)
    return [row for part in parts for row in part.order_by("timestamp")]


def _raw_points(queryset: QuerySet[HostSample], spec: Series, limit: int) -> list[dict[str, Any]]:
    """One point per sample: the newest `limit`, oldest first.

    Rows come as tuples zipped with the API's keys, and the per-device JSON as text parsed by orjson: Django's
    row dicts and JSONField's json.loads per row were half the CPU of a 1,000-point request.
    """
    keys = ("host", "timestamp", *spec.columns, *spec.detail)
    detail_text = (Cast(column, TextField()) for column in spec.detail)
    rows = queryset.order_by("-ts").values_list("host__name", "ts", *spec.columns, *detail_text)[:limit]
    points = [dict(zip(keys, row, strict=True)) for row in rows]
    for point in points:
        for column in spec.detail:
            point[column] = orjson.loads(point[column])
    points.reverse()
    return points


def _point(row: dict[str, Any]) -> dict[str, Any]:
    """API shape: `host` and `timestamp` first, then the values."""
    return {"host": row.pop("host_name"), "timestamp": row.pop("timestamp"), **row}


def _reports() -> dict[str, float]:
    """Hosts' latest report times from Redis; none while Redis is unreachable (callers fall back)."""
    try:
        return store.last_reports()
    except redis.RedisError:
        return {}


def _read_json(key: str) -> Any:
    try:
        return store.read_json(key)
    except redis.RedisError:
        return None


def _latest_host() -> str | None:
    reports = _reports()
    return max(reports, key=reports.__getitem__) if reports else None


def _agent_snapshot(host: str | None) -> dict[str, Any] | None:
    try:
        return store.read_snapshot(host)
    except redis.RedisError:
        return None


def current_snapshot(host: str | None) -> dict[str, Any] | None:
    """The latest sample of `host` (default: the host that reported last), from Redis, else the database."""
    if snapshot := _agent_snapshot(host):
        return {**snapshot, "source": "agent"}
    queryset = _samples(_host_id(host)).select_related("host").order_by("-ts")
    latest = queryset.first()
    if latest is None:
        return None
    columns = [column for spec in SERIES.values() for column in (*spec.columns, *spec.detail)]
    values = {column: getattr(latest, column) for column in columns}
    return {"host": latest.host.name, "timestamp": latest.ts.isoformat(), **values, "source": "database"}


def top_processes(host: str | None, sort_by: str, limit: int) -> dict[str, Any] | None:
    name = host or _latest_host()
    if name is None or not (document := _read_json(store.processes_key(name))):
        return None
    key = "cpu_percent" if sort_by == "cpu" else "memory_percent"
    rows: Sequence[dict[str, Any]] = sorted(document["processes"], key=lambda row: row[key], reverse=True)
    return {"host": name, "timestamp": document["timestamp"], "sort_by": sort_by, "processes": rows[:limit]}


def hosts() -> list[dict[str, Any]]:
    """Every known host with its latest report and whether it is reporting now."""
    reports = _reports()
    now = timezone.now().timestamp()
    rows = []
    for host in Host.objects.order_by("name"):
        last = reports.get(host.name) or (host.last_seen_at.timestamp() if host.last_seen_at else None)
        allowed = settings.MONITORING_HOST_STALE_INTERVALS * host.interval_seconds + 10
        rows.append(
            {
                "name": host.name,
                "active": host.active,
                "cpu_count": host.cpu_count,
                "memory_total_bytes": host.memory_total_bytes,
                "platform": host.platform,
                "boot_time": host.boot_time,
                "interval_seconds": host.interval_seconds,
                "first_seen_at": host.first_seen_at,
                "last_report_at": datetime.fromtimestamp(last, tz=UTC) if last else None,
                "reporting": last is not None and now - last <= allowed,
            }
        )
    return rows
