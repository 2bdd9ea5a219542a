"""The hourly-series rules: gaps, scaling, the validation split and error measures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.services import NotEnoughHistoryError
from forecasting.services.series import (
    MIN_TRAIN_HOURS,
    HourlySeries,
    Scaler,
    fill_gaps,
    horizon_errors,
    hourly_series,
    validation_start,
)

START = pd.Timestamp("2026-01-05", tz="UTC")


def test_hourly_series_puts_missing_hours_on_the_grid_as_nan() -> None:
    frame = pd.DataFrame(
        {
            "key": ["a", "a", "a"],
            "hour": [START, START + pd.Timedelta(hours=1), START + pd.Timedelta(hours=4)],
            "value": [1.0, 2.0, 5.0],
            "rows": [60, 60, 3],
        }
    )
    series = hourly_series(frame)["a"]
    assert series.start == START
    np.testing.assert_array_equal(series.values, [1.0, 2.0, np.nan, np.nan, 5.0])
    assert series.rows == 123
    assert series.observed_hours() == 3


def test_short_gaps_are_interpolated_long_and_trailing_gaps_get_the_mean() -> None:
    values = np.array([1.0, np.nan, 3.0, 1.0, np.nan, np.nan, np.nan, np.nan, 2.0, np.nan])
    filled, observed = fill_gaps(values)
    np.testing.assert_allclose(filled, [1.0, 2.0, 3.0, 1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0])
    np.testing.assert_array_equal(observed, [1, 0, 1, 1, 0, 0, 0, 0, 1, 0])


def test_scaler_round_trips_and_survives_a_flat_series() -> None:
    scaler = Scaler.fit(np.array([10.0, 12.0, np.nan, 14.0]))
    np.testing.assert_allclose(scaler.inverse(scaler.transform(np.array([11.0]))), [11.0])
    flat = Scaler.fit(np.array([5.0, 5.0, 5.0]))
    assert flat.scale == pytest.approx(0.05)


def test_validation_is_the_last_fifth_by_time() -> None:
    hours = 1000
    series = {"a": HourlySeries("a", START, np.ones(hours))}
    assert validation_start(series) == START + pd.Timedelta(hours=hours - 200)


def test_too_little_history_says_how_much_is_needed() -> None:
    series = {"a": HourlySeries("a", START, np.ones(MIN_TRAIN_HOURS - 1))}
    with pytest.raises(NotEnoughHistoryError, match=r"at least 672 hours \(28 days\).*have 671 h"):
        validation_start(series)


def test_mostly_empty_history_is_not_enough_either() -> None:
    values = np.full(2000, np.nan)
    values[:100] = 1.0
    with pytest.raises(NotEnoughHistoryError, match="100 observed hours"):
        validation_start({"a": HourlySeries("a", START, values)})


def test_horizon_errors_score_observed_hours_only() -> None:
    actual = np.full((1, 168), 10.0)
    actual[0, 30] = np.nan
    predicted = np.full((1, 168), 10.0)
    predicted[0, :24] = 12.0  # first day off by 2
    predicted[0, 30] = 1e9  # unobserved: never scored
    errors = horizon_errors(predicted, actual)
    assert errors["mae_24h"] == pytest.approx(2.0)
    assert errors["max_abs_24h"] == pytest.approx(2.0)
    assert errors["mae_25_168h"] == pytest.approx(0.0)
    assert errors["mae"] == pytest.approx(48 / 167)
    assert errors["scored_hours"] == 167
    assert horizon_errors(predicted, actual, 24)["mae_25_168h"] is None
