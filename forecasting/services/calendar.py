"""Public holidays of the site's country, for the forecast's calendar, where a series keeps them.

The country is configurable (`FORECAST_HOLIDAYS`): an ISO 3166 code (`IT`, `KR`), `auto` for the country of
the calendar time zone (from the system's zone.tab: `Europe/Rome` -> `IT`), or empty for none.

Whether a series' holidays are rest days is read from its own history (`keeps_holidays`), not assumed:
on the BWDF DMAs (Italy) holidays look like Sundays, but `auto` resolves a country from the time zone
alone, and the project's simulated sensors (Asia/Seoul, no holidays kept) got every Korean holiday
forecast with a Sunday's shape: 0.831 of naive's MAE at 24 h instead of 0.741 (10 sensors, a year;
docs/BENCHMARKS.md). Measured decisions are in docs/forecasting.md.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import holidays
import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

ZONE_TABLES = (Path("/usr/share/zoneinfo/zone1970.tab"), Path("/usr/share/zoneinfo/zone.tab"))


@functools.cache
def _zone_countries() -> dict[str, str]:
    """Time zone name -> ISO country code, from the first zone table found (zone.tab lists one country)."""
    table: dict[str, str] = {}
    for path in reversed(ZONE_TABLES):  # zone.tab first, so it wins for zones zone1970.tab lists per region
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("#") or not line.strip():
                continue
            codes, _, zone = line.split("\t")[:3]
            table.setdefault(zone, codes.split(",")[0])
    return table


def resolve_country(setting: str, time_zone: str) -> str:
    """The holiday country for a setting value (`auto`, a code, or empty) and the calendar's time zone."""
    value = setting.strip()
    if value.lower() == "auto":
        return _zone_countries().get(time_zone, "")
    return value.upper()


def holiday_mask(local: pd.DatetimeIndex, country: str) -> np.ndarray:
    """1.0 for hours whose local date is a public holiday of `country` (all 0 without a country)."""
    if not country or len(local) == 0:
        return np.zeros(len(local), dtype=np.float32)
    try:
        days = holidays.country_holidays(country, years=range(local.year.min(), local.year.max() + 1))
    except NotImplementedError:
        logger.warning("no holiday calendar for country %r: holidays not used", country)
        return np.zeros(len(local), dtype=np.float32)
    dates = np.array(sorted(days), dtype="datetime64[D]")
    local_dates = local.tz_localize(None).normalize().to_numpy().astype("datetime64[D]")
    return np.isin(local_dates, dates).astype(np.float32)


# A series' holidays are rest days only if enough of its past ones were: MIN_HOLIDAYS holidays on a
# working weekday with MIN_DAY_HOURS observed hours, each compared with its references within
# REFERENCE_WEEKS.
MIN_HOLIDAYS = 4
MIN_DAY_HOURS = 20
REFERENCE_WEEKS = 3


def holiday_votes(local: pd.DatetimeIndex, values: np.ndarray, country: str) -> tuple[int, int]:
    """(past holidays that looked like the Sundays around them, holidays compared) for one hourly series.

    1. Each local day's 24 hours (the mean where DST repeats an hour); unobserved hours are NaN.
    2. For every public holiday from Monday to Friday (a weekend's says nothing: Saturdays often look
       like Sundays) with at least MIN_DAY_HOURS observed hours: its references are the same weekday and
       the Sundays within REFERENCE_WEEKS, holidays left out; each side is the hourly mean of at least
       two such days.
    3. The holiday looks like a rest day if its mean absolute difference (level and shape at once) to the
       Sundays' hours is below that to the same weekday's.
    """
    mask = holiday_mask(local, country)
    if not mask.any():
        return 0, 0
    frame = pd.DataFrame(
        {"value": values, "date": local.tz_localize(None).normalize(), "hour": local.hour, "holiday": mask}
    )
    days = frame.groupby(["date", "hour"])["value"].mean().unstack("hour").reindex(columns=range(24))
    days = days.reindex(pd.date_range(days.index.min(), days.index.max(), freq="D"))
    table = days.to_numpy(dtype=float)
    weekday = days.index.day_of_week.to_numpy()
    holiday = days.index.isin(frame.loc[frame["holiday"] > 0, "date"].unique())
    looked_like_rest = compared = 0
    for day in np.flatnonzero(holiday & (weekday < 5)).tolist():
        if np.isfinite(table[day]).sum() < MIN_DAY_HOURS:
            continue
        near = np.arange(max(day - 7 * REFERENCE_WEEKS, 0), min(day + 7 * REFERENCE_WEEKS + 1, len(table)))
        near = near[~holiday[near]]
        distances = []
        for references in (near[weekday[near] == weekday[day]], near[weekday[near] == 6]):
            observed = references[np.isfinite(table[references]).sum(axis=1) >= MIN_DAY_HOURS]
            if observed.size < 2:
                break
            distances.append(np.nanmean(np.abs(table[day] - np.nanmean(table[observed], axis=0))))
        if len(distances) == 2 and np.isfinite(distances).all():
            compared += 1
            looked_like_rest += int(distances[1] < distances[0])
    return looked_like_rest, compared


def keeps_holidays(local: pd.DatetimeIndex, values: np.ndarray, country: str) -> bool:
    """Whether a series' public holidays behave like its Sundays (holiday_votes): a majority of at least
    MIN_HOLIDAYS compared. Otherwise (too few, or most look like working days) they are ordinary days."""
    rest_like, compared = holiday_votes(local, values, country)
    return compared >= MIN_HOLIDAYS and 2 * rest_like > compared
