"""The seasonal profile: a recent level times a same-kind daily shape, on the local clock.

Why this shape (BWDF development set, docs/forecasting.md): a mean of the same hour over past days lags
a drifting level (summer weeks drift upwards) and mixes the level of old weeks into the forecast. Split
in two, each part is estimated from what suits it:

1. Shape: for every hour of the day and kind of day (working day, Saturday, Sunday or public holiday),
   the median over the last 4 weeks of value / the mean of its week. Dividing by the week's mean keeps
   old weeks' levels out of it; the median ignores a burst or a holiday that is not flagged. Flagged
   public holidays in the history are left out (a holiday ahead is forecast with Sundays' shape). Only
   series whose past holidays behaved like Sundays have them flagged (calendar.keeps_holidays);
   elsewhere a holiday is an ordinary day, in the history and ahead.
2. Level: the level that makes the shape fit the last 7 days (mean of value / shape), robust to gaps (a
   plain mean of a week with missing night hours is too high).
3. Anomaly: how far the last day was above or below shape x level, fading with lead time.

Days are counted on the local clock (Panel.local_lag): a day is 23 or 25 UTC hours across a DST change.
The profile works on original units (ratios need a positive level); where a series' level is not
positive it is undefined (NaN) and callers fall back to the seasonal-naive value.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .panel import Panel
from .series import HISTORY_HOURS, HORIZON_HOURS

SHAPE_DAYS = HISTORY_HOURS // 24  # 28: four Saturdays and Sundays, twenty working days
KINDS = 3  # Panel.day_kind: working day, Saturday, Sunday or public holiday
# Tuned on the BWDF tuning weeks (12 origins from 2022-02-07, all 10 DMAs, profile alone; PI1/PI2/PI3):
# the anomaly's e-folding time 24 h: 0.730/0.732/0.843 (12 h 0.731/0.733/0.842, 48 h 0.733/0.734/0.845,
# 96 h 0.737/0.736/0.850); the level from 7 days (3 days 0.732/0.734/0.848, 14 days 0.731/0.733/0.845);
# the anomaly from the last 24 h (12 h 0.753/0.749/0.845, 48 h 0.728/0.736/0.842); median shape (mean:
# 0.734/0.718/0.842). Flat around these values: the split into level and shape is what mattered.
ANOMALY_DECAY_HOURS = 24.0
LEVEL_DAYS = 7
ANOMALY_HOURS = 24


@dataclass
class Profile:
    """The profile of (origins x 168) target hours, in scaled units, and the parts the trees also read."""

    value: np.ndarray  # scaled; NaN where undefined
    shape: np.ndarray  # (n, 168) value / level expected at each target hour
    level: np.ndarray  # (n,) original units
    anomaly: np.ndarray  # (n,) last day's actual / (shape x level) - 1
    week_change: np.ndarray  # (n,) last week's mean / the week before's - 1


def _quiet(function: Callable[..., np.ndarray], values: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # all-NaN slices are NaN, by design
        return function(values, axis=axis)


def seasonal_profile(panel: Panel, origins: np.ndarray) -> Profile:
    """Level x shape (module doc) for flat origins, from the HISTORY_HOURS before each origin only."""
    n = origins.size
    series = panel.series_of(origins)
    first = panel.offsets[series]
    loc = np.array([panel.scalers[i].loc for i in series])
    scale = np.array([panel.scalers[i].scale for i in series])

    def raw(positions: np.ndarray) -> np.ndarray:
        """Original-unit values at positions before each origin; NaN outside the series or unobserved."""
        shape = (-1,) + (1,) * (positions.ndim - 1)
        inside = (positions >= first.reshape(shape)) & (positions < origins.reshape(shape))
        values = panel.target[np.clip(positions, 0, panel.target.size - 1)]
        return np.where(inside, values * scale.reshape(shape) + loc.reshape(shape), np.nan)

    # 1. The same hour of the day (counted from the origin) on each of the 28 days before it.
    day_start = origins[:, None, None] + np.arange(24)[None, None, :]
    days_back = np.arange(1, SHAPE_DAYS + 1)[None, :, None]
    cells = np.clip(panel.local_lag(day_start, 24 * days_back), 0, None)  # (n, 28, 24)
    # Past public holidays stay out of the shape and the level: a holiday is forecast with Sundays'
    # shape, and the few the site works anyway (a series is flagged when most of its holidays looked
    # like Sundays) must not turn the Sundays' median into a working day's.
    values = np.where(panel.holiday[cells] > 0, np.nan, raw(cells))
    kinds = panel.day_kind[cells]
    weeks = raw(origins[:, None] - np.arange(HISTORY_HOURS, 0, -1)[None, :]).reshape(n, -1, HORIZON_HOURS)
    week_means = _quiet(np.nanmean, weeks, axis=2)[:, ::-1]  # (n, 4): last week first
    week_means = np.where(week_means > 0, week_means, np.nan)
    ratios = values / week_means[:, (days_back[0, :, 0] - 1) // 7][:, :, None]
    any_kind = _quiet(np.nanmedian, ratios, axis=1)  # (n, 24)
    table = np.stack(
        [_quiet(np.nanmedian, np.where(kinds == kind, ratios, np.nan), axis=1) for kind in range(KINDS)], axis=1
    )
    table = np.where(np.isfinite(table), table, any_kind[:, None, :])  # (n, 3, 24)
    rows = np.arange(n)[:, None, None]
    # 2. Level: the mean of value / shape over the last days.
    fitted_shape = table[rows, kinds, np.arange(24)[None, None, :]]
    level = _quiet(np.nanmean, (values / fitted_shape)[:, :LEVEL_DAYS].reshape(n, -1), axis=1)
    # 3. Anomaly of the last hours against shape x level.
    recent = origins[:, None] - np.arange(ANOMALY_HOURS, 0, -1)[None, :]
    recent_hour = (recent - origins[:, None]) % 24
    recent_shape = table[np.arange(n)[:, None], panel.day_kind[np.clip(recent, 0, None)], recent_hour]
    anomaly = _quiet(np.nanmean, raw(recent) / (recent_shape * level[:, None]), axis=1) - 1
    anomaly = np.where(np.isfinite(anomaly), anomaly, 0.0)
    # The target hours: their kind and their hour of the day on the origin's clock.
    leads = np.arange(HORIZON_HOURS)[None, :]
    targets = origins[:, None] + leads
    hour = (leads + panel.utc_offset[targets] - panel.utc_offset[origins][:, None]) % 24
    shape = table[np.arange(n)[:, None], panel.day_kind[targets], hour]
    value = shape * level[:, None] * (1 + anomaly[:, None] * np.exp(-leads / ANOMALY_DECAY_HOURS))
    return Profile(
        value=((value - loc[:, None]) / scale[:, None]).astype(np.float32),
        shape=shape.astype(np.float32),
        level=level,
        anomaly=anomaly,
        week_change=week_means[:, 0] / week_means[:, 1] - 1,
    )
