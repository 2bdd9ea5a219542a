"""Many hourly series laid end to end in flat arrays (the layout both forecasters index), with their local
calendar (hour, weekday, public holidays) and optional exogenous columns (weather forecasts).

Pure numpy/pandas: no TensorFlow here, so the gradient-boosted forecaster and the tests do not load it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .calendar import holiday_mask
from .series import HORIZON_HOURS, LAG_HOURS, HourlySeries, Scaler, fill_gaps


@dataclass
class Panel:
    """Many hourly series laid end to end in flat float32 arrays, the layout the windows index."""

    keys: list[str]
    offsets: np.ndarray  # first flat position of each series
    lengths: np.ndarray
    starts: list[pd.Timestamp]
    scalers: list[Scaler]
    filled: np.ndarray  # scaled, gaps filled
    observed: np.ndarray  # 1.0 observed, 0.0 filled
    target: np.ndarray  # scaled, NaN where unobserved
    # (N, 5): sin/cos hour of day, sin/cos day of week, rest day (weekend or public holiday), local time
    calendar: np.ndarray
    hour_of_day: np.ndarray  # local, 0-23
    day_of_week: np.ndarray  # local, 0 = Monday
    holiday: np.ndarray  # 1.0 on a public holiday of the configured country, in series that keep them
    day_kind: np.ndarray  # local: 0 working day, 1 Saturday, 2 Sunday or (kept) public holiday
    utc_offset: np.ndarray  # local clock minus UTC, whole hours (DST moves it)
    exog: np.ndarray  # (N, k) exogenous inputs (NaN unknown); k = 0 without any

    def global_origins(self, series_index: int, positions: np.ndarray) -> np.ndarray:
        return self.offsets[series_index] + positions

    def series_of(self, origins: np.ndarray) -> np.ndarray:
        """Index of the series each flat position belongs to."""
        return np.searchsorted(self.offsets, origins, side="right") - 1

    def local_lag(self, positions: np.ndarray, hours: np.ndarray | int) -> np.ndarray:
        """Flat positions `hours` earlier on the local clock (a week before 09:00 is 09:00 across a DST change).

        Demand follows the local clock: a lag counted in UTC hours is an hour off for a week (a day for a
        daily lag) after each DST change. Positions before 0 are clipped; callers mask the series' start.
        """
        earlier = positions - hours
        return earlier + self.utc_offset[positions] - self.utc_offset[np.maximum(earlier, 0)]

    def unscale(self, origins: np.ndarray, *arrays: np.ndarray, shift: bool = True) -> list[np.ndarray]:
        """(origins x hours) arrays in original units; `shift=False` for differences (scale only)."""
        index = self.series_of(origins)
        loc = np.array([self.scalers[i].loc for i in index])[:, None]
        scale = np.array([self.scalers[i].scale for i in index])[:, None]
        return [array * scale + (loc if shift else 0.0) for array in arrays]


def build_panel(
    series: list[HourlySeries],
    scalers: list[Scaler],
    time_zone: str,
    pad_hours: int = 0,
    *,
    holiday_country: str = "",
    holiday_keys: Collection[str] = (),
    exog: pd.DataFrame | None = None,
) -> Panel:
    """Flatten series (each optionally padded with `pad_hours` unknown hours at its end, for forecasting).

    Calendar features are in local time (`time_zone`): demand follows the local clock, DST included.
    Public holidays of `holiday_country` are rest days only in the series named in `holiday_keys` (those
    whose history shows it: calendar.keeps_holidays); elsewhere they are ordinary days.
    `exog` (UTC hourly index, one column per input) is shared by all series (one site's weather).
    """
    parts: dict[str, list[np.ndarray]] = {
        name: [] for name in ("filled", "observed", "target", "cal", "hod", "dow", "kind", "offset")
    }
    holiday_parts, exog_parts, lengths = [], [], []
    for item, scaler in zip(series, scalers, strict=True):
        values = np.concatenate([item.values, np.full(pad_hours, np.nan)])
        scaled = scaler.transform(values)
        filled, observed = fill_gaps(scaled)
        hours = pd.date_range(item.start, periods=len(values), freq="h")
        local = hours.tz_convert(time_zone)
        hour_of_day = local.hour.to_numpy()
        day_of_week = local.day_of_week.to_numpy()
        holiday = holiday_mask(local, holiday_country if item.key in holiday_keys else "")
        day_angle = 2 * np.pi * (hour_of_day + local.minute.to_numpy() / 60) / 24
        week_angle = 2 * np.pi * day_of_week / 7
        rest_day = (day_of_week >= 5) | (holiday > 0)
        parts["filled"].append(filled)
        parts["observed"].append(observed)
        parts["target"].append(scaled.astype(np.float32))
        parts["cal"].append(
            np.stack([np.sin(day_angle), np.cos(day_angle), np.sin(week_angle), np.cos(week_angle), rest_day], axis=1)
        )
        parts["hod"].append(hour_of_day)
        parts["dow"].append(day_of_week)
        parts["kind"].append(np.where((day_of_week == 6) | (holiday > 0), 2, (day_of_week == 5).astype(np.int64)))
        offset = local.tz_localize(None) - hours.tz_localize(None)
        parts["offset"].append((offset // pd.Timedelta(hours=1)).to_numpy())
        holiday_parts.append(holiday)
        if exog is not None:
            exog_parts.append(exog.reindex(hours).to_numpy(dtype=np.float32))
        lengths.append(len(values))
    lengths_array = np.asarray(lengths, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths_array)[:-1]]).astype(np.int64)
    total = int(lengths_array.sum())
    return Panel(
        keys=[item.key for item in series],
        offsets=offsets,
        lengths=lengths_array,
        starts=[item.start for item in series],
        scalers=scalers,
        filled=np.concatenate(parts["filled"]).astype(np.float32),
        observed=np.concatenate(parts["observed"]).astype(np.float32),
        target=np.concatenate(parts["target"]).astype(np.float32),
        calendar=np.concatenate(parts["cal"]).astype(np.float32),
        hour_of_day=np.concatenate(parts["hod"]).astype(np.int64),
        day_of_week=np.concatenate(parts["dow"]).astype(np.int64),
        holiday=np.concatenate(holiday_parts).astype(np.float32),
        day_kind=np.concatenate(parts["kind"]).astype(np.int64),
        utc_offset=np.concatenate(parts["offset"]).astype(np.int64),
        exog=np.concatenate(exog_parts).astype(np.float32) if exog_parts else np.zeros((total, 0), np.float32),
    )


def seasonal_offsets() -> np.ndarray:
    """(HORIZON, 14) offsets from the origin: for each target hour, the same hour of day on the 14 days before.

    Column 0 is the most recent such hour (yesterday's for the first day, further back for later ones).
    """
    horizon = np.arange(HORIZON_HOURS)[:, None]
    first_day_back = (horizon // 24) + 1
    return horizon - 24 * (first_day_back + np.arange(LAG_HOURS // 24)[None, :])
