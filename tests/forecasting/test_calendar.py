"""Public holidays are rest days only for series whose own history shows it (calendar.keeps_holidays)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.conf import LazySettings

from forecasting.models import ModelVersion
from forecasting.services import registry
from forecasting.services.calendar import MIN_HOLIDAYS, holiday_mask, holiday_votes, keeps_holidays
from forecasting.services.forecaster import FitResult, fit, forecast
from forecasting.services.series import HourlySeries

ZONE = "Europe/Rome"
COUNTRY = "IT"
START = pd.Timestamp("2024-01-01", tz=ZONE).tz_convert("UTC")
HOLIDAY = pd.Timestamp("2025-06-02", tz=ZONE)  # Festa della Repubblica, a Monday


def demand(days: int, *, holidays_rest: bool, seed: int = 1) -> np.ndarray:
    """Hourly demand: working days peak at 07:00, weekends lower and at 10:00; public holidays like Sundays
    (`holidays_rest`) or like any working day."""
    local = pd.date_range(START, periods=days * 24, freq="h").tz_convert(ZONE)
    hour = local.hour.to_numpy()
    rest = local.day_of_week.to_numpy() >= 5
    if holidays_rest:
        rest |= holiday_mask(local, COUNTRY) > 0
    working = 1 + 0.8 * np.exp(-((hour - 7) ** 2) / 2)
    weekend = 0.8 + 0.5 * np.exp(-((hour - 10) ** 2) / 4)
    noise = np.random.default_rng(seed).normal(0, 0.02, len(local))
    return 100 * np.where(rest, weekend, working) * (1 + noise)


def local_hours(values: np.ndarray) -> pd.DatetimeIndex:
    return pd.date_range(START, periods=len(values), freq="h").tz_convert(ZONE)


def test_holidays_that_look_like_sundays_are_kept() -> None:
    values = demand(365, holidays_rest=True)
    rest_like, compared = holiday_votes(local_hours(values), values, COUNTRY)
    assert compared >= MIN_HOLIDAYS
    assert rest_like == compared
    assert keeps_holidays(local_hours(values), values, COUNTRY)


def test_holidays_that_look_like_working_days_are_not() -> None:
    values = demand(365, holidays_rest=False)
    rest_like, compared = holiday_votes(local_hours(values), values, COUNTRY)
    assert compared >= MIN_HOLIDAYS
    assert rest_like == 0
    assert not keeps_holidays(local_hours(values), values, COUNTRY)


def test_too_few_past_holidays_decide_nothing() -> None:
    # January-February 2024: New Year's Day and Epiphany (a Saturday) only, however Sunday-like.
    values = demand(60, holidays_rest=True)
    assert holiday_votes(local_hours(values), values, COUNTRY)[1] < MIN_HOLIDAYS
    assert not keeps_holidays(local_hours(values), values, COUNTRY)


def test_unobserved_holidays_are_not_compared() -> None:
    values = demand(365, holidays_rest=True)
    local = local_hours(values)
    values[holiday_mask(local, COUNTRY) > 0] = np.nan
    assert holiday_votes(local, values, COUNTRY) == (0, 0)
    assert not keeps_holidays(local, values, COUNTRY)


def both_series() -> list[HourlySeries]:
    """Two sites until two weeks after HOLIDAY: one keeps public holidays, the other works through them."""
    days = (HOLIDAY.tz_convert("UTC") - START).days + 14
    return [
        HourlySeries(key, START, demand(days, holidays_rest=key == "keeps", seed=seed), days * 24)
        for seed, key in enumerate(("keeps", "works"))
    ]


def fit_both() -> FitResult:
    """The forecaster trained on both series before HOLIDAY."""
    return fit(
        {item.key: item.until(HOLIDAY.tz_convert("UTC")) for item in both_series()},
        epochs=1,
        batch_size=8,
        windows_per_epoch=8,
        units=4,
        patience=1,
        seed=1,
        time_zone=ZONE,
        candidates=(),  # the seasonal profile alone: fast, and the holiday is the only thing tested
        max_tree_rows=1000,
        holiday_country=COUNTRY,
    )


def test_a_holiday_ahead_has_the_sunday_shape_only_where_the_series_keeps_holidays() -> None:
    result = fit_both()
    assert result.model.holiday_keys == ["keeps"]
    assert result.params["holiday_series"] == 1
    predictions = forecast(result.model, result.scalers, both_series(), HOLIDAY.tz_convert("UTC"), ZONE)
    seven = 7  # 07:00 local on the holiday: a working day's peak (180), a Sunday's ~85
    assert predictions["keeps"].value[seven] == pytest.approx(85, rel=0.1)
    assert predictions["works"].value[seven] == pytest.approx(180, rel=0.1)
    # The next day is a working day for both.
    assert predictions["keeps"].value[24 + seven] == pytest.approx(180, rel=0.1)


@pytest.mark.django_db
def test_the_holiday_keepers_survive_the_artifact(settings: LazySettings, tmp_path: Path) -> None:
    settings.FORECAST_MODEL_DIR = tmp_path
    result = fit_both()
    version = ModelVersion.objects.create(
        metric="flow",
        data_start=result.data_start,
        data_end=result.data_end,
        validation_start=result.validation_start,
        mae=1.0,
        baseline_mae=2.0,
    )
    registry.save_artifact(version, result)
    assert registry.load(version).model.holiday_keys == ["keeps"]
    # An artifact from before the decision (format 3) kept every series' holidays, as it was trained.
    scalers_file = tmp_path / version.artifact_dir / registry.SCALERS_FILE
    payload = json.loads(scalers_file.read_text())
    del payload["holiday_keys"]
    payload["format"] = 3
    scalers_file.write_text(json.dumps(payload))
    registry._cache.clear()
    assert sorted(registry.load(version).model.holiday_keys) == ["keeps", "works"]
