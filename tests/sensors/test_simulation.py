"""sensors.simulation: deterministic, realistic profiles, and every fault kind with its ground truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from sensors.protocol import FrameError, FrameLayout, parse_frame
from sensors.simulation import FAULT_KINDS, Fault, simulate

MONDAY = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)  # 00:00 Monday in Seoul
CODES = ["001", "002", "003"]


def hours(frame: pd.DataFrame, metric: str = "flow") -> pd.Series:
    local = frame["ts"].dt.tz_convert("Asia/Seoul")
    return frame.groupby(local.dt.hour)[metric].mean()


def test_same_seed_same_readings_other_seed_other_readings() -> None:
    first = simulate(CODES, MONDAY, 120, seed=5)
    again = simulate(CODES, MONDAY, 120, seed=5)
    other = simulate(CODES, MONDAY, 120, seed=6)
    pd.testing.assert_frame_equal(first.readings, again.readings)
    assert not np.allclose(first.readings["flow"], other.readings["flow"])
    assert list(first.readings.columns) == ["sensor", "ts", "flow", "pressure", "status"]
    assert len(first.readings) == 360


def test_daily_profile_has_a_night_minimum_and_two_peaks_and_a_weekly_pattern() -> None:
    week = simulate(["001"], MONDAY, 7 * 1440, seed=1).readings
    weekdays = week[week["ts"].dt.tz_convert("Asia/Seoul").dt.day_of_week < 5]
    profile = hours(weekdays)
    assert profile.idxmin() in {1, 2, 3, 4}
    assert profile[7:9].max() > 2 * profile.min()
    assert profile[18:21].max() > 2 * profile.min()
    assert profile[0:6].max() < profile[7:9].max()
    weekend = week[week["ts"].dt.tz_convert("Asia/Seoul").dt.day_of_week >= 5]
    assert hours(weekend).idxmax() != 7  # the weekend morning peak comes later
    # Pressure falls when demand peaks (head loss).
    pressure = hours(weekdays, "pressure")
    assert pressure[3] > pressure[8]
    assert week["flow"].std() > 0


def test_chunks_join_into_the_same_profile() -> None:
    whole = simulate(["002"], MONDAY, 120, seed=3).readings
    halves = pd.concat(
        [
            simulate(["002"], MONDAY, 60, seed=3).readings,
            simulate(["002"], MONDAY + timedelta(hours=1), 60, seed=3).readings,
        ]
    )
    clean = np.abs(whole["flow"].to_numpy() - halves["flow"].to_numpy()) / whole["flow"].to_numpy()
    assert clean.max() < 0.2  # noise differs per chunk, the profile does not


def test_leak_raises_night_flow_by_the_magnitude_over_the_window() -> None:
    days = 6
    leak = Fault("leak", "001", MONDAY, MONDAY + timedelta(days=days), magnitude=0.6)
    result = simulate(["001"], MONDAY, days * 1440, seed=2, faults=[leak])
    base = simulate(["001"], MONDAY, days * 1440, seed=2).readings
    night = result.readings["ts"].dt.tz_convert("Asia/Seoul").dt.hour.isin([2, 3, 4])
    rise = result.readings["flow"][night].to_numpy() / base["flow"][night].to_numpy()
    last_night = rise[-180:].mean()
    first_night = rise[:180].mean()
    assert first_night < 1.1
    assert 1.45 < last_night < 1.75
    assert result.truth.to_dict("records") == [
        {"sensor": "001", "kind": "leak", "metric": "flow", "start": leak.start, "end": leak.end, "magnitude": 0.6}
    ]


def test_burst_stuck_spike_and_dropout_change_the_values() -> None:
    at = MONDAY + timedelta(hours=10)
    faults = [
        Fault("burst", "001", at, at + timedelta(minutes=30)),
        Fault("stuck", "002", at, at + timedelta(hours=2)),
        Fault("spike", "003", at, at + timedelta(minutes=1), magnitude=4),
        Fault("dropout", "003", at + timedelta(hours=1), at + timedelta(hours=1, minutes=15)),
    ]
    result = simulate(CODES, MONDAY, 1440, seed=4, faults=faults)
    clean = simulate(CODES, MONDAY, 1440, seed=4).readings.set_index(["sensor", "ts"])
    faulty = result.readings.set_index(["sensor", "ts"])
    window = pd.date_range(at, periods=30, freq="min")
    burst = faulty.loc["001"].loc[window]
    assert (burst["flow"] > clean.loc["001"].loc[window]["flow"] * 1.3).all()
    assert (burst["pressure"] < clean.loc["001"].loc[window]["pressure"]).all()
    stuck = faulty.loc["002"].loc[pd.date_range(at, periods=120, freq="min")]
    assert stuck["flow"].nunique() == 1
    assert stuck["pressure"].nunique() == 1
    assert faulty.loc[("003", at), "flow"] == pytest.approx(clean.loc[("003", at), "flow"] * 5, rel=1e-3)
    assert len(result.readings[result.readings["sensor"] == "003"]) == 1440 - 15
    assert set(result.truth["kind"]) == {"burst", "stuck", "spike", "dropout"}
    assert set(result.truth[result.truth["kind"] == "burst"]["metric"]) == {"flow", "pressure"}


def test_corrupt_and_clock_skew_change_the_wire_not_the_values() -> None:
    layout = FrameLayout(time_zone="Asia/Seoul")
    faults = [
        Fault("corrupt", "001", MONDAY, MONDAY + timedelta(minutes=20)),
        Fault("clock_skew", "002", MONDAY, MONDAY + timedelta(minutes=20), magnitude=7),
    ]
    result = simulate(["001", "002"], MONDAY, 30, seed=1, faults=faults)
    pd.testing.assert_frame_equal(result.readings, simulate(["001", "002"], MONDAY, 30, seed=1).readings)
    parsed: dict[str, list[datetime]] = {"001": [], "002": []}
    bad = 0
    for minute, frame in result.frames(layout):
        try:
            reading = parse_frame(frame, layout)
        except FrameError:
            bad += 1
            continue
        parsed[reading.sensor].append(reading.ts)
        if reading.sensor == "002" and minute < MONDAY + timedelta(minutes=20):
            assert reading.ts == minute + timedelta(minutes=7)
    assert bad >= 18  # 20 corrupted frames; rarely a garbled one still parses
    assert len(parsed["002"]) == 30
    assert set(result.truth["metric"]) == {"wire"}


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("flood", "001", MONDAY, MONDAY + timedelta(hours=1))
    with pytest.raises(ValueError, match="ends before"):
        Fault("leak", "001", MONDAY, MONDAY)
    with pytest.raises(ValueError, match="timezone-aware"):
        Fault("leak", "001", datetime(2026, 1, 1), datetime(2026, 1, 2))
    assert len(FAULT_KINDS) == 7


def test_a_shorter_run_is_a_prefix_of_a_longer_one() -> None:
    short = simulate(CODES, MONDAY, 20, seed=9).readings
    long = simulate(CODES, MONDAY, 60, seed=9).readings
    pd.testing.assert_frame_equal(short, long[long["ts"] < MONDAY + timedelta(minutes=20)].reset_index(drop=True))
