"""Hourly series: regular hourly grids with honest gaps, per-series scaling, gap filling and error measures.

Pure numpy/pandas (no TensorFlow, no database) so the rules are testable on their own.

Rules (stated in docs/forecasting.md):
1. Every series is a regular UTC hourly grid; an hour with no sample is NaN ("unobserved"), never invented.
2. Model inputs need numbers, so gaps are filled: gaps of up to INTERPOLATE_LIMIT hours linearly between
   their neighbours, longer gaps (and gaps at the end, which have no right neighbour) with the series
   mean (0 once scaled). A parallel "observed" channel tells the model which hours were filled.
3. Losses and error measures use observed hours only: a filled hour is never scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import ForecastError, NotEnoughHistoryError

HORIZON_HOURS = 168  # predicted directly: one output per hour of the next 7 days
LAG_HOURS = 336  # two weeks of inputs: the seasonal-naive week and the one before it
# What a forecast reads before its origin: 4 weeks, for the gradient-boosted candidate's same hour of the
# week 1-4 weeks back (the LSTM reads the last LAG_HOURS of it). A series needs only LAG_HOURS of it.
HISTORY_HOURS = 672
# The LSTM reads the last two days hour by hour (recent level and dynamics); the seasonal candidates cover
# the rest. 48 steps cost a third of 168 and validated better on the simulator.
SEQ_HOURS = 48
INTERPOLATE_LIMIT = 3
# One training window (LAG + HORIZON) before the validation span and one full horizon inside it.
MIN_TRAIN_HOURS = LAG_HOURS + 2 * HORIZON_HOURS
MIN_VALIDATION_HOURS = HORIZON_HOURS
VALIDATION_FRACTION = 0.2


@dataclass
class HourlySeries:
    """One sensor's (or one CSV's) hourly means on a regular grid starting at `start` (UTC, on the hour)."""

    key: str
    start: pd.Timestamp
    values: np.ndarray  # float64, NaN = no sample in that hour
    rows: int = 0  # raw samples behind the hourly means

    @property
    def end(self) -> pd.Timestamp:
        """The hour after the last one (exclusive)."""
        return self.start + pd.Timedelta(hours=len(self.values))

    def observed_hours(self) -> int:
        return int(np.isfinite(self.values).sum())

    def until(self, origin: pd.Timestamp) -> HourlySeries:
        """The part strictly before `origin`: what was known when a forecast is issued at `origin`."""
        keep = max(0, min(len(self.values), int((origin - self.start) / pd.Timedelta(hours=1))))
        return HourlySeries(self.key, self.start, self.values[:keep], self.rows)

    def at(self, hours: pd.DatetimeIndex) -> np.ndarray:
        """Values at the given hours (NaN outside the grid)."""
        positions = ((hours - self.start) / pd.Timedelta(hours=1)).to_numpy().astype(np.int64)
        inside = (positions >= 0) & (positions < len(self.values))
        out = np.full(len(hours), np.nan)
        out[inside] = self.values[positions[inside]]
        return out


def hourly_series(frame: pd.DataFrame) -> dict[str, HourlySeries]:
    """Regular hourly grids from rows of (key, hour, value[, rows]); hours must already be UTC hour starts."""
    result: dict[str, HourlySeries] = {}
    if frame.empty:
        return result
    for key, group in frame.groupby("key", sort=True):
        hours = pd.DatetimeIndex(group["hour"])
        start, last = hours.min(), hours.max()
        grid = pd.date_range(start, last, freq="h")
        values = pd.Series(group["value"].to_numpy(dtype=float), index=hours).reindex(grid).to_numpy()
        rows = int(group["rows"].sum()) if "rows" in group else len(group)
        result[str(key)] = HourlySeries(str(key), start, values, rows)
    return result


@dataclass(frozen=True)
class Scaler:
    """Per-series standardisation, fitted on training hours only and stored with the model."""

    loc: float
    scale: float

    @classmethod
    def fit(cls, values: np.ndarray) -> Scaler:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            raise ForecastError("cannot scale a series without a single observed value")
        loc = float(finite.mean())
        spread = float(finite.std())
        # A flat series (a stuck sensor) still gets a usable unit: 1 % of its level, or 1.
        scale = spread if spread > 1e-9 else (abs(loc) * 0.01 or 1.0)
        return cls(loc, scale)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.loc) / self.scale

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.scale + self.loc


def fill_gaps(scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(filled values, observed mask) for a scaled series, by the rules in the module docstring."""
    series = pd.Series(scaled, dtype=float)
    missing = series.isna()
    run_id = (~missing).cumsum()
    run_length = missing.groupby(run_id).transform("sum")
    interpolated = series.interpolate(limit_area="inside")
    short_gap = missing & (run_length <= INTERPOLATE_LIMIT)
    filled = series.where(~short_gap, interpolated).fillna(0.0)
    return filled.to_numpy(dtype=np.float32), (~missing).to_numpy(dtype=np.float32)


def validation_start(series: dict[str, HourlySeries]) -> pd.Timestamp:
    """Where validation begins: the last 20 % of the common time range (at least one horizon).

    The split is by time for every series at once, so no validation hour was seen during training.
    """
    if not series:
        raise NotEnoughHistoryError("no readings at all: nothing to train on")
    start = min(item.start for item in series.values())
    end = max(item.end for item in series.values())
    span_hours = int((end - start) / pd.Timedelta(hours=1))
    longest = max(series.values(), key=lambda item: item.observed_hours())
    if span_hours < MIN_TRAIN_HOURS or longest.observed_hours() < MIN_TRAIN_HOURS // 2:
        raise NotEnoughHistoryError(
            f"too little history to train: at least {MIN_TRAIN_HOURS} hours ({MIN_TRAIN_HOURS // 24} days) of "
            f"hourly data are needed ({LAG_HOURS} h of inputs + {HORIZON_HOURS} h to predict, plus "
            f"{MIN_VALIDATION_HOURS} h to validate), with at least half of them observed; "
            f"have {span_hours} h from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC, the best series "
            f"({longest.key}) has {longest.observed_hours()} observed hours"
        )
    validation_hours = max(MIN_VALIDATION_HOURS, round(span_hours * VALIDATION_FRACTION))
    return end - pd.Timedelta(hours=validation_hours)


def horizon_errors(predicted: np.ndarray, actual: np.ndarray, horizon_hours: int = HORIZON_HOURS) -> dict:
    """Errors of (origins x hours) forecasts against actuals (NaN = unobserved, not scored).

    MAPE ignores hours whose actual is below 1 % of the mean absolute actual (night flow near zero would
    otherwise dominate it).
    """
    predicted = predicted[:, :horizon_hours]
    actual = actual[:, :horizon_hours]
    errors = np.abs(predicted - actual)
    scored = np.isfinite(errors)

    def mean(selection: np.ndarray) -> float | None:
        return float(errors[selection].mean()) if selection.any() else None

    first_day = np.zeros_like(scored)
    first_day[:, :24] = True
    later = ~first_day
    floor = 0.01 * np.nanmean(np.abs(actual)) if scored.any() else 0.0
    relevant = scored & (np.abs(np.nan_to_num(actual)) > floor)
    mape = float((errors[relevant] / np.abs(actual[relevant])).mean() * 100) if relevant.any() else None
    return {
        "mae_24h": mean(scored & first_day),
        "max_abs_24h": float(errors[scored & first_day].max()) if (scored & first_day).any() else None,
        "mae_25_168h": mean(scored & later),
        "mae": mean(scored),
        "mape": mape,
        "scored_hours": int(scored.sum()),
    }
