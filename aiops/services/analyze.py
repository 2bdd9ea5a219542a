"""Analysis of one series on demand: the project's detectors, episodes, robust statistics, trend,
seasonal decomposition and a short forecast.

1. Scores come from anomaly.detectors (`make_detector`, the same streaming detectors host detection
   uses), so a point's score depends only on the points before it; a point is flagged when its score
   reaches the detector's threshold, and `episode_starts` cuts flags into alert episodes.
2. Trend: Theil-Sen slope (median of pairwise slopes; robust to 29% outliers) with its 95% interval,
   and the Mann-Kendall test for a monotonic trend (Kendall's tau between time and value, which is
   the Mann-Kendall statistic with its normal approximation and tie correction).
3. Seasonal decomposition: statsmodels' robust STL with the given period in points (default: one day
   at the series' median step, when at least two days are present).
4. Forecast: the STL trend extended by the Theil-Sen slope of its last period, plus the last seasonal
   cycle; the 95% interval adds the 2.5/97.5% quantiles of the STL remainder and the slope's
   uncertainty times the horizon.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from django.conf import settings
from scipy import stats

from anomaly import detectors

from ..models import MetricPoint

# Theil-Sen pairs are O(n^2): above this many points the slope is computed on an evenly strided subset
# (1,000 points = 0.5 M pairs, ~40 ms; the full 10,000 would be 50 M pairs, ~2 s and 400 MB).
THEIL_SEN_MAX_POINTS = 1000
# STL's cost grows with points x period: 10,000 5-minute points (period 288) took 5.6 s robust; their
# 6-point means (1,667 points, period 48) take ~0.1 s and give the same components within the noise.
STL_MAX_POINTS = 2000
MANN_KENDALL_ALPHA = 0.05
MAX_HORIZON = 1000


class AnalysisError(ValueError):
    """The input cannot be analysed as given (a 400 with this message)."""


@dataclass(frozen=True)
class Options:
    # The robust z-score by default: ~20 us a point where the ensemble (four detectors) costs ~100 us,
    # which keeps 10,000 points under a second (docs/BENCHMARKS.md); any anomaly.detectors method on request.
    methods: tuple[str, ...] = ("zscore",)
    period: int | None = None  # seasonality period in points; None: one day, when the data allows
    horizon: int = 12
    clean_points: int = 1


def validate_series(timestamps: Sequence[datetime], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Seconds since the epoch and values as arrays; AnalysisError for what cannot be analysed."""
    if len(timestamps) != len(values):
        raise AnalysisError(f"timestamps has {len(timestamps)} items but values has {len(values)}")
    if len(values) < 3:
        raise AnalysisError("at least 3 points are needed")
    if len(values) > settings.AIOPS_ANALYZE_MAX_POINTS:
        raise AnalysisError(f"{len(values)} points is more than the limit of {settings.AIOPS_ANALYZE_MAX_POINTS}")
    seconds = np.array([ts.timestamp() for ts in timestamps], dtype=float)
    array = np.asarray(values, dtype=float)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise AnalysisError(f"values[{bad[0]}] is not a finite number ({bad.size} such value(s))")
    steps = np.diff(seconds)
    if (steps <= 0).any():
        index = int(np.flatnonzero(steps <= 0)[0]) + 1
        kind = "duplicated" if steps[index - 1] == 0 else "out of order"
        raise AnalysisError(f"timestamps[{index}] is {kind} (timestamps must strictly increase)")
    return seconds, array


def summary(values: np.ndarray) -> dict[str, float]:
    """Robust statistics first (median, MAD, quartiles), then the classical ones."""
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    p5, p25, p75, p95 = (float(q) for q in np.percentile(values, [5, 25, 75, 95]))
    return {
        "count": int(values.size),
        "median": median,
        "mad": mad,
        "robust_sigma": detectors.MAD_TO_SIGMA * mad,
        "p5": p5,
        "p25": p25,
        "p75": p75,
        "p95": p95,
        "iqr": p75 - p25,
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
    }


def _strided(seconds: np.ndarray, values: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    if seconds.size <= limit:
        return seconds, values
    index = np.linspace(0, seconds.size - 1, limit).round().astype(int)
    return seconds[index], values[index]


def theil_sen(seconds: np.ndarray, values: np.ndarray) -> dict[str, float]:
    """Slope per second with its 95% interval, and the intercept at the first point."""
    x, y = _strided(seconds - seconds[0], values, THEIL_SEN_MAX_POINTS)
    result = stats.theilslopes(y, x, alpha=0.95)
    return {
        "slope_per_second": float(result.slope),
        "slope_per_hour": float(result.slope) * 3600,
        "slope_low_per_second": float(result.low_slope),
        "slope_high_per_second": float(result.high_slope),
        "intercept": float(result.intercept),
    }


def mann_kendall(seconds: np.ndarray, values: np.ndarray) -> dict[str, Any]:
    """Kendall's tau of value against time: the Mann-Kendall statistic, its p-value and the verdict."""
    tau, p_value = stats.kendalltau(seconds, values)
    tau = 0.0 if math.isnan(tau) else float(tau)
    p_value = 1.0 if math.isnan(p_value) else float(p_value)
    verdict = "no trend" if p_value >= MANN_KENDALL_ALPHA else "increasing" if tau > 0 else "decreasing"
    return {"tau": tau, "p_value": p_value, "alpha": MANN_KENDALL_ALPHA, "trend": verdict}


def trend(seconds: np.ndarray, values: np.ndarray, decomposition: dict[str, list[float]] | None) -> dict[str, Any]:
    """Theil-Sen and Mann-Kendall on the seasonally adjusted series when there is a decomposition: a daily
    cycle is not a trend, yet Mann-Kendall on the raw values of a sine over whole days finds one."""
    adjusted = values - np.asarray(decomposition["seasonal"]) if decomposition else values
    return {
        **theil_sen(seconds, adjusted),
        "mann_kendall": mann_kendall(seconds, adjusted),
        "series": "seasonally adjusted" if decomposition else "raw",
    }


def default_period(seconds: np.ndarray) -> int | None:
    """One day in points at the median step, when the series holds at least two days."""
    step = float(np.median(np.diff(seconds)))
    period = round(86400 / step) if step > 0 else 0
    return period if period >= 2 and seconds.size >= 2 * period else None


def _reduction(size: int, period: int) -> int:
    """Points averaged into one before STL: the smallest divisor of `period` that brings the series under
    STL_MAX_POINTS (1 when none does, or when the series is small enough already)."""
    needed = math.ceil(size / STL_MAX_POINTS)
    for factor in range(needed, period // 2 + 1):
        if period % factor == 0:
            return factor
    return 1


def decompose(values: np.ndarray, period: int) -> dict[str, list[float]]:
    """Robust STL. Long series are decomposed on means of `k` points (k divides the period, so the season
    keeps a whole number of points); the trend is interpolated back, the seasonal repeated by phase, and
    the residual is what remains of each original point."""
    from statsmodels.tsa.seasonal import STL

    factor = _reduction(values.size, period)
    usable = values.size - values.size % factor
    reduced = values[:usable].reshape(-1, factor).mean(axis=1) if factor > 1 else values
    result = STL(reduced, period=period // factor, robust=True).fit()
    if factor == 1:
        trend, seasonal = np.asarray(result.trend), np.asarray(result.seasonal)
    else:
        centres = np.arange(reduced.size) * factor + (factor - 1) / 2
        trend = np.interp(np.arange(values.size), centres, np.asarray(result.trend))
        seasonal = np.repeat(np.asarray(result.seasonal), factor)
        seasonal = np.concatenate([seasonal, seasonal[usable - period : usable - period + values.size - usable]])
    return {"trend": trend.tolist(), "seasonal": seasonal.tolist(), "residual": (values - trend - seasonal).tolist()}


def forecast(
    seconds: np.ndarray,
    values: np.ndarray,
    horizon: int,
    decomposition: dict[str, list[float]] | None,
    period: int | None,
) -> dict[str, Any]:
    """Point forecast and 95% interval for the next `horizon` steps (see the module docstring, 4)."""
    step = float(np.median(np.diff(seconds)))
    future = seconds[-1] + step * np.arange(1, horizon + 1)
    if decomposition is not None and period:
        trend = np.asarray(decomposition["trend"])
        seasonal = np.asarray(decomposition["seasonal"])
        remainder = np.asarray(decomposition["residual"])
        tail = max(period, 3)
        fit = theil_sen(seconds[-tail:], trend[-tail:])
        cycle = seasonal[-period:]
        repeat = cycle[np.arange(horizon) % period]
        method = "STL trend + last seasonal cycle"
    else:
        trend = values
        tail = min(values.size, 288)
        fit = theil_sen(seconds[-tail:], values[-tail:])
        level = fit["intercept"] + fit["slope_per_second"] * (seconds[-tail:] - seconds[-tail])
        remainder = values[-tail:] - level
        repeat = np.zeros(horizon)
        method = "Theil-Sen trend of the recent points"
    ahead = future - seconds[-1]
    last_level = fit["intercept"] + fit["slope_per_second"] * (seconds[-1] - seconds[-tail])
    point = last_level + fit["slope_per_second"] * ahead + repeat
    low_q, high_q = np.percentile(remainder, [2.5, 97.5])
    spread = (fit["slope_high_per_second"] - fit["slope_low_per_second"]) / 2 * ahead
    return {
        "method": method,
        "timestamps": [_iso(t) for t in future],
        "values": point.tolist(),
        "lower": (point + low_q - spread).tolist(),
        "upper": (point + high_q + spread).tolist(),
        "interval": 0.95,
    }


def episodes(seconds: np.ndarray, scores: np.ndarray, flags: np.ndarray, clean_points: int) -> list[dict[str, Any]]:
    """Runs of flagged points (a run ends after `clean_points` unflagged points), with their peak."""
    starts = np.flatnonzero(detectors.episode_starts(flags, clean_points=clean_points))
    if starts.size == 0:
        return []
    flagged = np.flatnonzero(flags)
    bounds = [*starts[1:], flags.size]
    found: list[dict[str, Any]] = []
    for start, following in zip(starts, bounds, strict=True):
        end = int(flagged[np.searchsorted(flagged, following) - 1])  # the last flag before the next episode
        peak = int(start) + int(np.argmax(scores[start : end + 1]))
        found.append(
            {
                "start": _iso(seconds[start]),
                "end": _iso(seconds[end]),
                "points": int(flags[start : end + 1].sum()),
                "peak_at": _iso(seconds[peak]),
                "peak_score": float(scores[peak]),
            }
        )
    return found


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(float(epoch), tz=UTC).isoformat()


def score(method: str, timestamps: Sequence[datetime], values: np.ndarray) -> tuple[np.ndarray, float]:
    """Scores from the project's detector `method` and its alert threshold."""
    try:
        detector = detectors.make_detector(method)
    except ValueError as exc:
        raise AnalysisError(str(exc)) from exc
    scores = np.array([detector.update(ts, float(value)) for ts, value in zip(timestamps, values, strict=True)])
    return scores, float(detector.threshold)


def analyze(timestamps: Sequence[datetime], values: Sequence[float], options: Options) -> dict[str, Any]:
    """The whole analysis of one series (see the module docstring)."""
    seconds, array = validate_series(timestamps, values)
    if not 1 <= options.horizon <= MAX_HORIZON:
        raise AnalysisError(f"horizon must be between 1 and {MAX_HORIZON}")
    period = options.period if options.period is not None else default_period(seconds)
    if period is not None and not 2 <= period <= array.size // 2:
        raise AnalysisError(f"period {period} needs 2 <= period <= half the points ({array.size // 2})")
    detection: dict[str, Any] = {}
    for method in dict.fromkeys(options.methods):
        scores, threshold = score(method, timestamps, array)
        flags = np.nan_to_num(scores, nan=0.0) >= threshold
        detection[method] = {
            "threshold": threshold,
            "scores": [None if math.isnan(s) else float(s) for s in scores],
            "flags": flags.tolist(),
            "flagged": int(flags.sum()),
            "episodes": episodes(seconds, np.nan_to_num(scores, nan=0.0), flags, options.clean_points),
        }
    decomposition = decompose(array, period) if period else None
    return {
        "points": int(array.size),
        "start": _iso(seconds[0]),
        "end": _iso(seconds[-1]),
        "step_seconds": float(np.median(np.diff(seconds))),
        "detection": detection,
        "summary": summary(array),
        "trend": trend(seconds, array, decomposition),
        "seasonal": {"period": period, **decomposition} if decomposition else {"period": None},
        "forecast": forecast(seconds, array, options.horizon, decomposition, period),
    }


@dataclass(frozen=True)
class Reference:
    """A stored series to analyse: a host metric, a sensor metric or a custom metric."""

    metric: str
    start: datetime
    end: datetime
    host: str | None = None
    sensor: str | None = None
    labels: dict[str, str] | None = None


def load_reference(ref: Reference) -> tuple[list[datetime], list[float]]:
    """The stored points of a referenced series in [start, end]; AnalysisError when there is no such series."""
    from monitoring.models import HostSample
    from sensors.models import Reading

    from . import metrics

    if ref.start >= ref.end:
        raise AnalysisError("start must be before end")
    limit = settings.AIOPS_ANALYZE_MAX_POINTS
    family, _, column = ref.metric.partition(".")
    if family == "host" and column in metrics.HOST_COLUMNS:
        samples = HostSample.objects.filter(ts__gte=ref.start, ts__lte=ref.end)
        if ref.host:
            samples = samples.filter(host__name=ref.host)
        elif samples.values("host").distinct().count() > 1:
            raise AnalysisError("several hosts report in this range: name one with host")
        rows = list(samples.order_by("ts").values_list("ts", column)[: limit + 1])
    elif family == "sensor" and column in metrics.SENSOR_COLUMNS:
        if not ref.sensor:
            raise AnalysisError("a sensor metric needs sensor (its 3-digit code)")
        readings = Reading.objects.filter(sensor__code=ref.sensor, ts__gte=ref.start, ts__lte=ref.end)
        rows = list(readings.order_by("ts").values_list("ts", column)[: limit + 1])
    elif ref.metric in metrics.BUILTIN_NAMES or ref.metric.startswith(metrics.RESERVED_PREFIXES):
        raise AnalysisError(
            f"unknown built-in metric {ref.metric!r}; known: {', '.join(sorted(metrics.BUILTIN_NAMES))}"
        )
    else:
        found = metrics.matching_series(ref.metric, ref.labels or {})
        if not found:
            raise AnalysisError(f"unknown metric {ref.metric!r} (no built-in or custom series of that name and labels)")
        if len(found) > 1:
            raise AnalysisError(f"{len(found)} series of {ref.metric!r} match: give labels that pick one")
        points = MetricPoint.objects.filter(series=found[0], ts__gte=ref.start, ts__lte=ref.end)
        rows = list(points.order_by("ts").values_list("ts", "value")[: limit + 1])
    if len(rows) > limit:
        raise AnalysisError(f"the range holds more than {limit} points: narrow start/end")
    if not rows:
        raise AnalysisError(f"no points of {ref.metric} between {ref.start.isoformat()} and {ref.end.isoformat()}")
    return [ts for ts, _ in rows], [float(value) for _, value in rows]
