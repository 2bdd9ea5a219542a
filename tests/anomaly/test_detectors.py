"""Generic detectors: each catches what it should, stays quiet on clean data, and is strictly causal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anomaly.detectors import METHODS, episode_starts, make_detector, score_series

START = datetime(2026, 3, 2, tzinfo=UTC)


def daily_series(points: int, step_minutes: int = 5, seed: int = 1) -> tuple[list[datetime], np.ndarray]:
    """A daily cycle with noise: what a flow sensor or a host's CPU looks like."""
    rng = np.random.default_rng(seed)
    timestamps = [START + timedelta(minutes=step_minutes * i) for i in range(points)]
    phase = np.arange(points) * 2 * np.pi * step_minutes / 1440
    return timestamps, 10 + 3 * np.sin(phase) + rng.normal(0, 0.3, points)


FAST = [method for method in METHODS if method != "iforest"]


@pytest.mark.parametrize("method", METHODS)
def test_scores_of_a_prefix_do_not_change_when_points_are_appended(method: str) -> None:
    timestamps, values = daily_series(900 if method == "iforest" else 1500)
    values[700] += 6
    full = score_series(method, timestamps, values)
    cut = 800
    prefix = score_series(method, timestamps[:cut], values[:cut])
    np.testing.assert_array_equal(prefix, full[:cut])


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=40, max_size=200),
    cut=st.integers(min_value=1, max_value=39),
    method=st.sampled_from(FAST),
)
def test_causality_holds_for_any_series(values: list[float], cut: int, method: str) -> None:
    timestamps = [START + timedelta(minutes=i) for i in range(len(values))]
    full = score_series(method, timestamps, values)
    np.testing.assert_array_equal(score_series(method, timestamps[:cut], values[:cut]), full[:cut])


@pytest.mark.parametrize("method", METHODS)
def test_batch_equals_streaming(method: str) -> None:
    timestamps, values = daily_series(600)
    detector = make_detector(method)
    streamed = [detector.update(ts, value) for ts, value in zip(timestamps, values, strict=True)]
    np.testing.assert_array_equal(np.array(streamed), score_series(method, timestamps, values))


@pytest.mark.parametrize("method", ["likelihood", "seasonal", "hst", "ensemble", "iforest"])
def test_a_spike_inside_the_daily_swing_fires(method: str) -> None:
    timestamps, values = daily_series(900 if method == "iforest" else 3000)
    spike = len(values) - 100
    values[spike] += 5  # less than the daily swing: a plain level z-score cannot see it
    scores = score_series(method, timestamps, values)
    assert scores[spike] >= make_detector(method).threshold


@pytest.mark.parametrize("method", ["likelihood", "zscore", "iqr", "ensemble", "hst"])
def test_a_level_outlier_on_a_flat_series_fires(method: str) -> None:
    rng = np.random.default_rng(3)
    values = 50 + rng.normal(0, 1, 800)
    values[600] = 80
    timestamps = [START + timedelta(minutes=i) for i in range(len(values))]
    scores = score_series(method, timestamps, values)
    assert scores[600] >= make_detector(method).threshold


@pytest.mark.parametrize("method", FAST)
def test_clean_seasonal_data_stays_quiet(method: str) -> None:
    timestamps, values = daily_series(3000, seed=7)
    scores = score_series(method, timestamps, values)
    threshold = make_detector(method).threshold
    # zscore/iqr ignore seasonality, so the daily swing is within their window's spread; all stay quiet
    assert (scores >= threshold).mean() < 0.002


def test_nan_scores_nan_and_is_not_learned() -> None:
    timestamps, values = daily_series(200)
    with_gap = values.copy()
    with_gap[100] = np.nan
    scores = score_series("zscore", timestamps, with_gap)
    assert np.isnan(scores[100])
    clean = score_series("zscore", timestamps[:100] + timestamps[101:], np.delete(values, 100))
    np.testing.assert_array_equal(scores[101:], clean[100:])


def test_unknown_method_and_bad_parameters_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown method 'magic'"):
        make_detector("magic")
    with pytest.raises(ValueError, match="bad parameters for zscore"):
        make_detector("zscore", windw=3)
    with pytest.raises(ValueError, match="period must be daily or weekly"):
        make_detector("seasonal", period="hourly")


def test_episode_starts_flags_only_the_first_point_of_each_episode() -> None:
    flags = [0, 1, 1, 1, 0, 1, 0, 0, 0, 1, 1]
    assert episode_starts(flags, clean_points=1).astype(int).tolist() == [0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0]
    assert episode_starts(flags, clean_points=3).astype(int).tolist() == [0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0]


def test_likelihood_learns_a_noisy_series_instead_of_alarming_on_it() -> None:
    """Heavy-tailed noise makes the raw Gaussian score high all the time; the likelihood learns that."""
    rng = np.random.default_rng(5)
    values = 100 + rng.standard_t(2, 5000)
    timestamps = [START + timedelta(minutes=5 * i) for i in range(len(values))]
    raw = score_series("zscore", timestamps, values)
    scores = score_series("likelihood", timestamps, values)
    after_learning = slice(1000, None)
    raw_alarms = episode_starts(raw[after_learning] >= 5, clean_points=10).sum()
    alarms = episode_starts(scores[after_learning] >= 1, clean_points=10).sum()
    assert raw_alarms > 50  # measured 90: the robust z-score alone keeps alarming
    assert alarms <= 3  # measured 2: the two largest t(2) excursions


def test_likelihood_fires_on_a_new_record_low() -> None:
    timestamps, values = daily_series(2000)
    values[1800] = values[:1800].min() - 2  # a drop below anything seen, small next to the swing
    scores = score_series("likelihood", timestamps, values)
    assert scores[1800] >= 1


def test_a_changed_shape_at_the_usual_level_fires() -> None:
    """Only the subsequence neighbours see this: the values stay inside the usual range, the rhythm changes."""
    timestamps, values = daily_series(4000, seed=2)
    rng = np.random.default_rng(9)
    values[3000:3060] = rng.uniform(7.5, 12.5, 60)  # jumps around within the daily range
    scores = score_series("likelihood", timestamps, values)
    assert (scores[3000:3060] >= 1).any()
    assert (scores[1000:2990] >= 1).sum() <= 2
