"""The four sensor methods on crafted arrays: fire when they should, stay silent (and say why) otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly import methods

NAN = np.nan


def arr(*values: float) -> np.ndarray:
    return np.array(values, dtype=float)


def test_system_reasons_and_precedence() -> None:
    #             ok    gap   status range stuck  missing-but-not-yet-a-gap
    result = methods.system(
        value=arr(5, NAN, 5, 25, 5, NAN),
        status=arr(0, 0, 7, 0, 0, 0),
        minutes_since_reading=arr(0, 6, 0, 0, 0, 2),
        flat_minutes=arr(1, 0, 1, 1, 5, 0),
        flat_readings=arr(1, 0, 1, 1, 5, 0),
        physical_min=arr(0, 0, 0, 0, 0, 0),
        physical_max=arr(16, 16, 16, 16, 16, 16),
        gap_minutes=arr(5, 5, 5, 5, 5, 5),
        stuck_minutes=arr(5, 5, 5, 5, 5, 5),
        stuck_readings=arr(3, 3, 3, 3, 3, 3),
    )
    assert result.fired.tolist() == [False, True, True, True, True, False]
    assert result.state.tolist() == ["ok", "gap", "status", "range", "stuck", "no_data"]
    assert (result.score[result.fired] >= 1).all()
    assert result.score[0] == 0


def test_stuck_one_minute_short_is_silent() -> None:
    result = methods.system(
        value=arr(5, 5), status=arr(0, 0), minutes_since_reading=arr(0, 0), flat_minutes=arr(4, 5),
        flat_readings=arr(4, 5), physical_min=arr(0, 0), physical_max=arr(16, 16), gap_minutes=arr(5, 5),
        stuck_minutes=arr(5, 5), stuck_readings=arr(3, 3),
    )  # fmt: skip
    assert result.fired.tolist() == [False, True]


def limits(cadence: float, max_flat_run: float = 0, stuck_minutes: float = 5) -> tuple[float, float]:
    readings, minutes = methods.stuck_limits(
        stuck_minutes=arr(stuck_minutes), stuck_readings=3, max_flat_run=arr(max_flat_run), cadence=arr(cadence),
        lookback_minutes=60,
    )  # fmt: skip
    return float(readings[0]), float(minutes[0])


def test_at_one_minute_the_limits_are_the_minute_rule_of_before() -> None:
    """Before cadence mattered: stuck after min(max(5, 2 x longest normal run), 60) identical minutes, gap at 5."""
    for max_flat_run in range(40):
        readings, minutes = limits(1, max_flat_run)
        assert minutes == min(max(5, 2 * max_flat_run), 60)
        assert readings <= minutes  # at one reading a minute the minutes decide
    assert methods.gap_limit(arr(5), arr(1)).tolist() == [5]


def test_limits_at_5_and_15_minutes() -> None:
    # one missing reading plus 4 minutes of allowance
    assert methods.gap_limit(arr(5, 5), arr(5, 15)).tolist() == [9, 19]
    # three identical readings (the value unchanged for 10 or 30 minutes); the minutes hold by then
    assert limits(5) == (3, 5)
    assert limits(15) == (3, 5)
    # a sensor that repeats a value twice normally needs 4 readings; capped at what the window holds
    assert limits(15, max_flat_run=2) == (4, 46)
    assert limits(15, max_flat_run=5) == (4, 46)  # 60 minutes hold 4 readings at 15
    assert limits(5, max_flat_run=9) == (12, 56)


@pytest.mark.parametrize("cadence", [5, 15])
def test_system_at_a_coarse_cadence(cadence: float) -> None:
    """Between readings nothing fires; one step of `cadence` flat minutes is not stuck; three equal readings
    are; a missing reading is a gap only once the allowance has passed."""
    stuck_readings, stuck_minutes = limits(cadence)
    gap = float(methods.gap_limit(arr(5), arr(cadence))[0])
    #                  new value   between   2 equal        3 equal            late, not yet     missing
    value = arr(5, NAN, 5, 5, NAN, NAN)
    since = arr(0, 2, 0, 0, gap - 1, gap)
    flat_minutes = arr(cadence, 0, cadence, 2 * cadence, 0, 0)
    flat_readings = arr(1, 0, 2, 3, 0, 0)
    n = len(value)
    result = methods.system(
        value=value, status=np.zeros(n), minutes_since_reading=since, flat_minutes=flat_minutes,
        flat_readings=flat_readings, physical_min=np.zeros(n), physical_max=np.full(n, 16.0),
        gap_minutes=np.full(n, gap), stuck_minutes=np.full(n, stuck_minutes), stuck_readings=np.full(n, stuck_readings),
    )  # fmt: skip
    assert result.state.tolist() == ["ok", "no_data", "ok", "stuck", "no_data", "gap"]
    assert result.fired.tolist() == [False, False, False, True, False, True]


def test_value_band() -> None:
    result = methods.value(
        value=arr(10, 17, 2, 10, NAN),
        lower=arr(4, 4, 4, NAN, 4),
        upper=arr(16, 16, 16, NAN, 16),
        median=arr(10, 10, 10, NAN, 10),
        mad=arr(1, 1, 1, NAN, 1),
    )
    assert result.fired.tolist() == [False, True, True, False, False]
    assert result.state.tolist() == ["ok", "fired", "fired", "no_criteria", "no_data"]
    assert result.score[1] == (17 - 10) / (16 - 10)
    assert result.score[2] == (10 - 2) / (10 - 4)


def test_predict_is_silent_without_a_forecast_and_fires_on_a_big_residual() -> None:
    result = methods.predict(
        value=arr(100, 100, 130, 100),
        forecast=arr(NAN, 98, 100, 100),
        residual_lower=arr(-10, -10, -10, NAN),
        residual_upper=arr(10, 10, 10, NAN),
    )
    assert result.fired.tolist() == [False, False, True, False]
    assert result.state.tolist() == ["no_forecast", "ok", "fired", "no_criteria"]


def test_predict_uses_the_forecasts_own_band_where_it_has_one() -> None:
    # Forecast 100 with a 10-90 % band of 95-110 (half-widths 5 below, 10 above); band_k 2.5632 widens it 2x.
    result = methods.predict(
        value=arr(89, 91, 119, 121, 121),
        forecast=arr(100, 100, 100, 100, 100),
        residual_lower=arr(-50, -50, -50, -50, -50),
        residual_upper=arr(50, 50, 50, 50, 50),
        forecast_lower=arr(95, 95, 95, 95, NAN),
        forecast_upper=arr(110, 110, 110, 110, NAN),
        band_k=2 * methods.Z_10_90,
    )
    # 90-120 from the forecast's band; the last hour has none: the criteria's residual band (50-150).
    assert result.fired.tolist() == [True, False, False, True, False]
    assert result.state.tolist() == ["fired", "ok", "ok", "fired", "ok"]


def test_night_needs_the_streak() -> None:
    result = methods.night(streak=arr(NAN, 0, 1, 2, 3), nights=arr(2, 2, 2, 2, 2), rise=arr(NAN, 0.01, 0.2, 0.25, 0.3))
    assert result.fired.tolist() == [False, False, False, True, True]
    assert result.state.tolist() == ["no_data", "ok", "ok", "fired", "fired"]
    assert result.score[4] > result.score[3] >= 1


def test_flags_follow_the_frame_order() -> None:
    def fired(*flags: bool) -> methods.MethodResult:
        return methods.MethodResult(
            fired=np.array(flags), score=np.zeros(len(flags)), state=np.array(["ok"] * len(flags))
        )

    flow = {"system": fired(False, True), "value": fired(True, False), "predict": fired(False, False),
            "night": fired(False, True)}  # fmt: skip
    assert methods.flags(flow, "flow").tolist() == ["0100", "1001"]
    pressure = {"system": fired(True, False), "value": fired(False, False), "predict": fired(False, True)}
    assert methods.flags(pressure, "pressure").tolist() == ["100", "001"]
