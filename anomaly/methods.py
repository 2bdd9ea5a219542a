"""The four sensor methods, pure and vectorised: every argument is a numpy array with one element per
evaluation (all sensors of one minute in the detection cycle, all sensor-minutes in the evaluation).

Each method returns a `MethodResult`: `fired` (bool), `score` (>= 1 when fired, comparable within a
method) and `state` (why: "ok", "fired" reasons, or "no_data" / "no_criteria" / "no_forecast" when the
method could not judge — it then stays silent, it never reports a pass it did not check).
Flow runs all four methods; pressure runs system, value and predict (see FLAG_METHODS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .detectors import MAD_TO_SIGMA

FLAG_METHODS = {"flow": ("system", "value", "predict", "night"), "pressure": ("system", "value", "predict")}


@dataclass(frozen=True)
class MethodResult:
    fired: np.ndarray
    score: np.ndarray
    state: np.ndarray


def _states(size: int, default: str = "ok") -> np.ndarray:
    return np.full(size, default, dtype=object)


def gap_limit(gap_minutes: np.ndarray, cadence: np.ndarray) -> np.ndarray:
    """Minutes without a reading before `gap` fires at the sensor's cadence: the expected reading is
    `gap_minutes` - 1 minutes overdue. At 1-minute cadence that is `gap_minutes` (ANOMALY_GAP_MINUTES, 5);
    at 15 minutes, 19: one missing reading plus the same 4 minutes of allowance."""
    return gap_minutes + cadence - 1


def stuck_limits(
    *,
    stuck_minutes: np.ndarray,
    stuck_readings: float,
    max_flat_run: np.ndarray,
    cadence: np.ndarray,
    lookback_minutes: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(readings, minutes) a run of identical readings must reach before `stuck` fires; both must hold.

    At least `stuck_readings` readings and `stuck_minutes` minutes, and twice the criteria's longest normal
    run (`max_flat_run`, in readings at the cadence). At 1 minute the minutes bind (5 identical minutes, as
    before cadence mattered); at 5 or 15 minutes the readings do (3 readings: 10 or 30 minutes of the same
    value), so one step between two readings is never a "flat" run. Both are capped at what the lookback
    window holds, so a sensor with long normal flat runs is still checked; a cadence whose window holds fewer
    than `stuck_readings` readings (over 20 minutes with the 60-minute default) cannot be judged and never fires.
    """
    readings = np.maximum(stuck_readings, 2 * max_flat_run)
    minutes = np.maximum(stuck_minutes, 2 * max_flat_run * cadence)
    capacity = np.maximum(np.floor(lookback_minutes / cadence), stuck_readings)
    return np.minimum(readings, capacity), np.minimum(minutes, lookback_minutes - cadence + 1)


def system(
    *,
    value: np.ndarray,
    status: np.ndarray,
    minutes_since_reading: np.ndarray,
    flat_minutes: np.ndarray,
    flat_readings: np.ndarray,
    physical_min: np.ndarray,
    physical_max: np.ndarray,
    gap_minutes: np.ndarray,
    stuck_minutes: np.ndarray,
    stuck_readings: np.ndarray,
) -> MethodResult:
    """Sensor health. In order of precedence for `state`: gap, status, range, stuck.

    `minutes_since_reading` is 0 when this minute has a reading; `flat_minutes` is how long the value has
    not changed (minutes since the last reading with a different value; 1 at 1-minute cadence when it
    differs from the previous one) and `flat_readings` how many readings it spans. The limits are those of
    the sensor's cadence (gap_limit, stuck_limits).
    """
    gap = minutes_since_reading >= gap_minutes
    has_value = ~np.isnan(value)
    bad_status = has_value & (np.nan_to_num(status) != 0)
    with np.errstate(invalid="ignore"):
        span = np.maximum(physical_max - physical_min, 1e-9)
        excess = np.maximum(physical_min - value, value - physical_max) / span
        out_of_range = has_value & (excess > 0)
        stuck = has_value & (flat_minutes >= stuck_minutes) & (np.nan_to_num(flat_readings) >= stuck_readings)
    score = np.zeros(len(value))
    score = np.where(stuck, np.minimum(flat_minutes / stuck_minutes, flat_readings / stuck_readings), score)
    score = np.where(out_of_range, 1 + np.nan_to_num(excess), score)
    score = np.where(bad_status, np.maximum(score, 1.0), score)
    score = np.where(gap, np.maximum(score, minutes_since_reading / gap_minutes), score)
    state = _states(len(value))
    state[stuck] = "stuck"
    state[out_of_range] = "range"
    state[bad_status] = "status"
    state[gap] = "gap"
    state[~has_value & ~gap] = "no_data"  # a missing minute is not a gap yet
    return MethodResult(fired=gap | bad_status | out_of_range | stuck, score=score, state=state)


def band(
    *, value: np.ndarray, lower: np.ndarray, upper: np.ndarray, centre: np.ndarray, spread: np.ndarray, missing: str
) -> MethodResult:
    """Fires outside [lower, upper]; the score is the distance from the centre over the band's half-width."""
    has_value = ~np.isnan(value)
    has_band = ~np.isnan(lower) & ~np.isnan(upper)
    judged = has_value & has_band
    with np.errstate(invalid="ignore"):
        outside = judged & ((value < lower) | (value > upper))
        half_width = np.where(value >= centre, upper - centre, centre - lower)
        score = np.abs(value - centre) / np.maximum(half_width, np.maximum(spread, 1e-9))
    state = _states(len(value))
    state[outside] = "fired"
    state[~has_band] = missing
    state[~has_value] = "no_data"
    return MethodResult(fired=outside, score=np.where(judged, score, 0.0), state=state)


def value(
    *, value: np.ndarray, lower: np.ndarray, upper: np.ndarray, median: np.ndarray, mad: np.ndarray
) -> MethodResult:
    """Outside the criteria band for this hour of day (criteria missing: "no_criteria", silent)."""
    return band(value=value, lower=lower, upper=upper, centre=median, spread=MAD_TO_SIGMA * mad, missing="no_criteria")


Z_10_90 = 1.2816  # half-width of a normal distribution's 10-90 % band, in standard deviations


def predict(
    *,
    value: np.ndarray,
    forecast: np.ndarray,
    residual_lower: np.ndarray,
    residual_upper: np.ndarray,
    forecast_lower: np.ndarray | None = None,
    forecast_upper: np.ndarray | None = None,
    band_k: float = 6.0,
) -> MethodResult:
    """|reading - forecast| outside the residual band. No forecast for this hour: "no_forecast", silent.

    Where the forecast carries its own calibrated 10-90 % band (forecasting), that band, widened to
    `band_k` standard deviations like the criteria's residual band, replaces the criteria's: it knows how
    sure this forecast is at this lead time.
    """
    lower, upper = forecast + residual_lower, forecast + residual_upper
    centre = forecast + (residual_lower + residual_upper) / 2
    if forecast_lower is not None and forecast_upper is not None:
        own = ~np.isnan(forecast_lower) & ~np.isnan(forecast_upper)
        widen = band_k / Z_10_90
        lower = np.where(own, forecast - widen * (forecast - forecast_lower), lower)
        upper = np.where(own, forecast + widen * (forecast_upper - forecast), upper)
        centre = np.where(own, forecast, centre)
    result = band(
        value=value, lower=lower, upper=upper, centre=centre, spread=np.zeros(len(value)), missing="no_forecast"
    )
    result.state[~np.isnan(forecast) & (np.isnan(lower) | np.isnan(upper)) & ~np.isnan(value)] = "no_criteria"
    return result


def night(*, streak: np.ndarray, nights: np.ndarray, rise: np.ndarray) -> MethodResult:
    """Leak suspicion: the night minimum stayed above baseline x (1 + margin) for `nights` consecutive nights.

    `streak` is the count ending with the latest complete night (NaN: no night summary yet), `rise` that
    night's relative rise over the baseline (the score's tiebreaker, for the evidence).
    """
    known = ~np.isnan(streak)
    fired = known & (np.nan_to_num(streak) >= nights)
    state = _states(len(streak))
    state[fired] = "fired"
    state[~known] = "no_data"
    score = np.where(known, np.nan_to_num(streak) / np.maximum(nights, 1), 0.0)
    return MethodResult(
        fired=fired, score=np.where(fired, np.maximum(score, 1.0) + np.nan_to_num(rise), score), state=state
    )


def flags(results: dict[str, MethodResult], metric: str) -> np.ndarray:
    """The alert frame's flag digits for one metric ("0100"), one string per element, in FLAG_METHODS order."""
    digits = [np.where(results[method].fired, "1", "0") for method in FLAG_METHODS[metric]]
    return np.array(["".join(chars) for chars in zip(*digits, strict=True)], dtype=object)
