"""Backtests on an operator's own CSV export: train before T, forecast at T (and later origins), score.

How real exports are read (each rule is also in docs/forecasting.md):
1. Timestamps with an offset (`+09:00`, `Z`) are exact. Naive ones are local time in `time_zone`:
   - a repeated local hour (DST ends) is resolved in file order: the first row for a local time is the
     first pass (daylight time), a repeat of that local time is the second (standard time);
   - a skipped local hour (DST starts) cannot be measured; a row stamped inside it is shifted forward.
2. Rows are sorted by time (the file may be in any order); rows with an unparseable timestamp, or a value
   that is empty, non-numeric, NaN or infinite, are counted and skipped.
3. Any sampling interval up to hourly (minute, 5-minute, hourly, irregular): each UTC hour becomes the
   mean of its samples; repeated timestamps simply both count. Coarser sampling is refused.
4. An hour without samples is a gap: filled for the model's inputs (see series.py), never scored.
5. T is rounded down to the hour. The model trains only on hours before T; every forecast at an origin
   uses only hours before that origin (the series is cut there, gaps re-filled from the left side only).
"""

from __future__ import annotations

import csv
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings

from . import ForecastError
from .forecaster import band_coverage, forecast
from .series import HORIZON_HOURS, HourlySeries, horizon_errors, hourly_series
from .training import fit_with_settings

WEEK = pd.Timedelta(days=7)
OFFSET_PATTERN = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$", re.IGNORECASE)


@dataclass
class CsvSeries:
    series: HourlySeries
    rows_read: int
    rows_used: int
    skipped: dict[str, int] = field(default_factory=dict)


def to_utc(raw: pd.Series, time_zone: str) -> pd.Series:
    """Parse timestamps by rule 1; unparseable ones become NaT."""
    text = raw.astype("string").str.strip()
    has_offset = text.str.contains(OFFSET_PATTERN, na=False)
    result = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    if has_offset.any():
        result[has_offset] = pd.to_datetime(text[has_offset], errors="coerce", utc=True, format="mixed")
    naive = ~has_offset & text.notna()
    if naive.any():
        local = pd.to_datetime(text[naive], errors="coerce", format="mixed")
        # Rule 1: the n-th occurrence of a local time (in file order) is its n-th pass.
        first_pass = local.groupby(local).cumcount().eq(0).to_numpy()
        localized = pd.DatetimeIndex(local).tz_localize(time_zone, ambiguous=first_pass, nonexistent="shift_forward")
        result[naive] = localized.tz_convert("UTC")
    return result


def read_csv(path: Path, timestamp_col: str, value_col: str, time_zone: str) -> CsvSeries:
    """The CSV's hourly series by the rules above; ForecastError with a readable message if unusable."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ForecastError(f"cannot read {path}: {exc}") from exc
    missing = [name for name in (timestamp_col, value_col) if name not in frame.columns]
    if missing:
        raise ForecastError(f"{path}: no column {', '.join(map(repr, missing))}; columns are {list(frame.columns)}")
    stamps = to_utc(frame[timestamp_col], time_zone)
    values = pd.to_numeric(frame[value_col].str.strip(), errors="coerce")
    bad_time = stamps.isna()
    bad_value = ~bad_time & ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    good = pd.DataFrame({"ts": stamps[~bad_time & ~bad_value], "value": values[~bad_time & ~bad_value]})
    if good.empty:
        raise ForecastError(f"{path}: no row with a valid timestamp and a numeric value")
    good = good.sort_values("ts", kind="stable")
    intervals = good["ts"].drop_duplicates().diff().dropna()
    if not intervals.empty and intervals.median() > pd.Timedelta(hours=1):
        raise ForecastError(
            f"{path}: samples are {intervals.median()} apart (median); hourly or finer sampling is needed"
        )
    good["hour"] = good["ts"].dt.floor("h")
    hourly = good.groupby("hour")["value"].agg(["mean", "size"]).reset_index()
    hourly = hourly.rename(columns={"mean": "value", "size": "rows"}).assign(key=Path(path).stem)
    series = hourly_series(hourly)[Path(path).stem]
    return CsvSeries(
        series=series,
        rows_read=len(frame),
        rows_used=len(good),
        skipped={"bad_timestamp": int(bad_time.sum()), "bad_value": int(bad_value.sum())},
    )


def read_exog(path: Path, timestamp_col: str, columns: list[str], time_zone: str) -> pd.DataFrame:
    """Exogenous inputs (e.g. the site's weather forecast) as hourly means on UTC hours, one column each.

    Timestamps follow rule 1; unparseable rows and non-numeric cells are dropped (a missing input is NaN,
    which the gradient-boosted candidate takes as unknown).
    """
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ForecastError(f"cannot read {path}: {exc}") from exc
    missing = [name for name in (timestamp_col, *columns) if name not in frame.columns]
    if missing:
        raise ForecastError(f"{path}: no column {', '.join(map(repr, missing))}; columns are {list(frame.columns)}")
    stamps = to_utc(frame[timestamp_col], time_zone)
    values = frame[columns].apply(lambda column: pd.to_numeric(column.str.strip(), errors="coerce"))
    values = values[stamps.notna().to_numpy()]
    values.index = pd.DatetimeIndex(stamps[stamps.notna()]).floor("h")
    return values.groupby(level=0).mean().astype(float)


def backtest(
    path: Path,
    *,
    timestamp_col: str,
    value_col: str,
    train_until: datetime,
    horizon_hours: int = HORIZON_HOURS,
    origins: int = 1,
    step: pd.Timedelta = WEEK,
    epochs: int | None = None,
    time_zone: str | None = None,
    predictions_path: Path | None = None,
    exog: pd.DataFrame | None = None,
) -> dict:
    """Train on hours before `train_until`, forecast at it and `origins - 1` later origins, score both."""
    started = time.perf_counter()
    time_zone = time_zone or settings.TIME_ZONE
    if horizon_hours not in {24, HORIZON_HOURS}:
        raise ForecastError("horizon must be 24h or 7d")
    if origins < 1 or step < pd.Timedelta(hours=1):
        raise ForecastError("origins must be at least 1 and step at least 1 hour")
    data = read_csv(path, timestamp_col, value_col, time_zone)
    first_origin = pd.Timestamp(train_until).tz_convert("UTC").floor("h")
    if first_origin >= data.series.end:
        raise ForecastError(f"--train-until {first_origin} is after the last data hour ({data.series.end})")
    training = data.series.until(first_origin)
    # Exogenous inputs of hours after T stand in for the forecast a site would have had at each origin.
    result = fit_with_settings({training.key: training}, epochs=epochs, time_zone=time_zone, exog=exog)
    issued, model_rows, baseline_rows, actual_rows, lower_rows, upper_rows = [], [], [], [], [], []
    for index in range(origins):
        origin = first_origin + index * step
        if origin >= data.series.end:
            break
        known = data.series.until(origin)
        predicted = forecast(result.model, result.scalers, [known], origin, time_zone, exog=exog).get(known.key)
        naive = forecast(None, result.scalers, [known], origin, time_zone).get(known.key)
        if predicted is None or naive is None:
            continue  # no observed hour in the input window: nothing to issue at this origin
        issued.append(origin)
        model_rows.append(predicted.value)
        baseline_rows.append(naive.value)
        lower_rows.append(predicted.lower if predicted.lower is not None else np.full(HORIZON_HOURS, np.nan))
        upper_rows.append(predicted.upper if predicted.upper is not None else np.full(HORIZON_HOURS, np.nan))
        actual_rows.append(data.series.at(pd.date_range(origin, periods=HORIZON_HOURS, freq="h")))
    if not issued:
        raise ForecastError("no origin had an observed hour in the two weeks before it")
    model, baseline, actual = np.array(model_rows), np.array(baseline_rows), np.array(actual_rows)
    lower, upper = np.array(lower_rows), np.array(upper_rows)
    if predictions_path is not None:
        _write_predictions(
            predictions_path,
            origins=issued,
            columns={"actual": actual, "model": model, "baseline": baseline, "lower": lower, "upper": upper},
            horizon_hours=horizon_hours,
        )
    model_errors = horizon_errors(model, actual, horizon_hours)
    baseline_errors = horizon_errors(baseline, actual, horizon_hours)
    return {
        "file": str(path),
        "rows_read": data.rows_read,
        "rows_used": data.rows_used,
        "rows_skipped": data.skipped,
        "hours": len(data.series.values),
        "training_hours": len(training.values),
        "train_until": first_origin.isoformat(),
        "origins": len(issued),
        "horizon_hours": horizon_hours,
        "epochs": result.epochs,
        "candidate": result.params["kind"],
        "shares": result.params["shares"],
        "validation_candidates_mae": {name: errors["mae"] for name, errors in result.candidates.items()},
        "band_coverage": band_coverage(actual[:, :horizon_hours], lower[:, :horizon_hours], upper[:, :horizon_hours]),
        "model": model_errors,
        "baseline": baseline_errors,
        "ratio_24h": _ratio(model_errors["mae_24h"], baseline_errors["mae_24h"]),
        "ratio": _ratio(model_errors["mae"], baseline_errors["mae"]),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _ratio(model: float | None, baseline: float | None) -> float | None:
    return round(model / baseline, 4) if model is not None and baseline else None


def _write_predictions(
    path: Path, *, origins: list[pd.Timestamp], columns: dict[str, np.ndarray], horizon_hours: int
) -> None:
    """timestamp, origin, then one column per array (NaN written empty: an unobserved actual, no band)."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["timestamp", "origin", *columns])
        for row, origin in enumerate(origins):
            for step in range(horizon_hours):
                cells = [values[row, step] for values in columns.values()]
                writer.writerow(
                    [
                        (origin + pd.Timedelta(hours=step)).isoformat(),
                        origin.isoformat(),
                        *("" if np.isnan(cell) else f"{cell:.6g}" for cell in cells),
                    ]
                )
