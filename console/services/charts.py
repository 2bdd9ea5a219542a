"""Chart plumbing shared by the pages: bucket widths sized to the chart, and the JSON a chart is drawn from.

A chart spec is columnar, the shape uPlot draws from: one `x` array (unix seconds) and one `values` array
per series, null where a bucket has no data. Columns come from the database already aggregated (time
buckets) and are shaped with pandas/numpy, never with a Python loop per point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings

# Buckets per chart: a chart is ~1,200 px wide at 1280x800, so 300 buckets give 4 px per point - every
# bucket stays visible as its own step, and a 30-day chart is 240 three-hour buckets instead of 43,200 minutes.
CHART_POINTS = 300
# Bucket widths a chart may use (seconds): whole minutes and hours, so buckets line up with clock time.
NICE_SECONDS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)

RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_RANGE = "24h"


def bucket_seconds(span: timedelta, points: int = CHART_POINTS) -> int:
    """The smallest nice bucket width that fits `span` into at most `points` buckets."""
    wanted = span.total_seconds() / points
    return next((step for step in NICE_SECONDS if step >= wanted), NICE_SECONDS[-1])


def floor_time(moment: datetime, seconds: int) -> datetime:
    """`moment` floored to a multiple of `seconds` since the epoch (the database's buckets start there)."""
    stamp = moment.timestamp()
    return moment - timedelta(seconds=stamp - math.floor(stamp / seconds) * seconds)


def epoch_seconds(index: pd.Index | pd.Series) -> list[int]:
    """Timezone-aware timestamps as unix seconds."""
    values = pd.to_datetime(pd.Series(index), utc=True)
    # pandas may hold microseconds or nanoseconds: divide by a Timedelta, not by a fixed power of ten
    return ((values - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).astype("int64").tolist()


def column(values: pd.Series | np.ndarray, digits: int = 3) -> list[float | None]:
    """A numeric column as JSON numbers, None for NaN (uPlot leaves a gap)."""
    array = np.round(np.asarray(values, dtype="float64"), digits)
    return [None if math.isnan(value) else value for value in array.tolist()]


@dataclass
class Chart:
    """One chart: x (unix seconds), series (label, values, style), shaded bands and marked time spans."""

    name: str
    title: str
    unit: str = ""
    x: list[int] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    bands: list[tuple[int, int]] = field(default_factory=list)  # (upper, lower) series positions, 1-based
    marks: list[dict[str, Any]] = field(default_factory=list)  # {"from", "to", "label", "severity"}
    kind: str = "time"  # "time" (a zoned time axis) or "spark" (no axes)

    def add(self, label: str, values: list[float | None], **style: Any) -> int:
        """Add a series; returns its uPlot position (1-based: 0 is x)."""
        self.series.append({"label": label, "values": values, **style})
        return len(self.series)

    @property
    def points(self) -> int:
        """Buckets that hold a value in the first series (what the end-to-end test counts on screen)."""
        return sum(value is not None for value in self.series[0]["values"]) if self.series else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "unit": self.unit,
            "kind": self.kind,
            "tz": settings.TIME_ZONE,
            "x": self.x,
            "series": self.series,
            "bands": self.bands,
            "marks": self.marks,
            "points": self.points,
        }
