"""Public holidays of the site's country, for the forecast's calendar (water demand on a holiday looks like a
Sunday's).

The country is configurable (`FORECAST_HOLIDAYS`): an ISO 3166 code (`IT`, `KR`), `auto` for the country of
the calendar time zone (from the system's zone.tab: `Europe/Rome` -> `IT`), or empty for none.
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
