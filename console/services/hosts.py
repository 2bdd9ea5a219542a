"""What the hosts page shows: each host's CPU, memory, disk and network over a range, and its top processes.

Series are monitoring's (queries.bucket_rows: buckets computed by the database, sized to the chart; buckets
of whole hours, the 7-day chart's, come from monitoring's hourly roll-up); processes and the host list are
monitoring's too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from django.utils import timezone

from monitoring.services import queries

from .charts import Chart, bucket_seconds, column, epoch_seconds, floor_time

RANGES = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
DEFAULT_RANGE = "1h"
KIB = 1024

# chart name -> (monitoring series, title, unit, [(column, label, colour, scale)]); only these columns are read
CHARTS: dict[str, tuple[str, str, str, list[tuple[str, str, str, float]]]] = {
    "cpu": ("cpu", "CPU", "%", [("cpu_percent", "CPU busy %", "#1d4ed8", 1.0)]),
    "memory": (
        "memory",
        "memory",
        "%",
        [("memory_percent", "memory used %", "#7c3aed", 1.0), ("swap_percent", "swap used %", "#c2410c", 1.0)],
    ),
    "disk": (
        "disk",
        "disk",
        "KiB/s",
        [
            ("disk_read_bytes_per_second", "read KiB/s", "#0f766e", 1 / KIB),
            ("disk_write_bytes_per_second", "write KiB/s", "#b45309", 1 / KIB),
        ],
    ),
    "network": (
        "network",
        "network",
        "KiB/s",
        [
            ("net_recv_bytes_per_second", "received KiB/s", "#0369a1", 1 / KIB),
            ("net_sent_bytes_per_second", "sent KiB/s", "#be185d", 1 / KIB),
        ],
    ),
}


def host_charts(
    host: str, span: timedelta, now: datetime | None = None, kind: str = "time", names: Sequence[str] = tuple(CHARTS)
) -> list[Chart]:
    """One chart per CHARTS entry named in `names` for `host` over the last `span`, in buckets sized to the
    chart; every series comes from one pass over the host's samples."""
    now = now or timezone.now()
    seconds = bucket_seconds(span)
    end = floor_time(now, seconds) + timedelta(seconds=seconds)
    start = end - span
    columns = [line[0] for name in names for line in CHARTS[name][3]]
    rows = queries.bucket_rows(columns, host=host, start=start, end=end, seconds=seconds)
    frame = pd.DataFrame(rows, columns=["timestamp", *columns])
    charts = []
    for name in names:
        _, title, unit, lines = CHARTS[name]
        chart = Chart(name=f"host-{name}", title=f"{title} ({unit})", unit=unit, kind=kind)
        chart.x = epoch_seconds(frame["timestamp"])
        for column_name, label, colour, scale in lines:
            chart.add(label, column(frame[column_name].astype("float64") * scale), color=colour, width=1.5)
        charts.append(chart)
    return charts


@dataclass
class HostsPage:
    hosts: list[dict[str, Any]]
    host: str | None
    range_key: str
    charts: list[Chart]
    processes: dict[str, Any] | None
    snapshot: dict[str, Any] | None
    sort_by: str


def hosts_page(host: str | None, range_key: str, sort_by: str = "cpu") -> HostsPage:
    known = queries.hosts()
    names = [row["name"] for row in known]
    if host not in names:
        reporting = [row["name"] for row in known if row["reporting"]]
        host = (reporting or names or [None])[0]
    range_key = range_key if range_key in RANGES else DEFAULT_RANGE
    sort_by = sort_by if sort_by in {"cpu", "memory"} else "cpu"
    if host is None:
        return HostsPage(known, None, range_key, [], None, None, sort_by)
    return HostsPage(
        hosts=known,
        host=host,
        range_key=range_key,
        charts=host_charts(host, RANGES[range_key]),
        processes=queries.top_processes(host, sort_by, 10),
        snapshot=queries.current_snapshot(host),
        sort_by=sort_by,
    )
