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


def system(
    *,
    value: np.ndarray,
    status: np.ndarray,
    minutes_since_reading: np.ndarray,
    flat_minutes: np.ndarray,
    physical_min: np.ndarray,
    physical_max: np.ndarray,
    gap_minutes: np.ndarray,
    stuck_minutes: np.ndarray,
) -> MethodResult:
    """Sensor health. In order of precedence for `state`: gap, status, range, stuck.

    `minutes_since_reading` is 0 when this minute has a reading; `flat_minutes` is the length of the run of
    identical values ending at this minute (1 = it differs from the previous one).
    """
    gap = minutes_since_reading >= gap_minutes
    has_value = ~np.isnan(value)
    bad_status = has_value & (np.nan_to_num(status) != 0)
    with np.errstate(invalid="ignore"):
        span = np.maximum(physical_max - physical_min, 1e-9)
        excess = np.maximum(physical_min - value, value - physical_max) / span
        out_of_range = has_value & (excess > 0)
        stuck = has_value & (flat_minutes >= stuck_minutes)
    score = np.zeros(len(value))
    score = np.where(stuck, flat_minutes / stuck_minutes, score)
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


def predict(
    *, value: np.ndarray, forecast: np.ndarray, residual_lower: np.ndarray, residual_upper: np.ndarray
) -> MethodResult:
    """|reading - forecast| outside the residual band. No forecast for this hour: "no_forecast", silent."""
    result = band(
        value=value,
        lower=forecast + residual_lower,
        upper=forecast + residual_upper,
        centre=forecast + (residual_lower + residual_upper) / 2,
        spread=np.zeros(len(value)),
        missing="no_forecast",
    )
    result.state[~np.isnan(forecast) & np.isnan(residual_lower) & ~np.isnan(value)] = "no_criteria"
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
