"""The four sensor methods on crafted arrays: fire when they should, stay silent (and say why) otherwise."""

from __future__ import annotations

import numpy as np

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
        physical_min=arr(0, 0, 0, 0, 0, 0),
        physical_max=arr(16, 16, 16, 16, 16, 16),
        gap_minutes=arr(5, 5, 5, 5, 5, 5),
        stuck_minutes=arr(5, 5, 5, 5, 5, 5),
    )
    assert result.fired.tolist() == [False, True, True, True, True, False]
    assert result.state.tolist() == ["ok", "gap", "status", "range", "stuck", "no_data"]
    assert (result.score[result.fired] >= 1).all()
    assert result.score[0] == 0


def test_stuck_one_minute_short_is_silent() -> None:
    result = methods.system(
        value=arr(5, 5), status=arr(0, 0), minutes_since_reading=arr(0, 0), flat_minutes=arr(4, 5),
        physical_min=arr(0, 0), physical_max=arr(16, 16), gap_minutes=arr(5, 5), stuck_minutes=arr(5, 5),
    )  # fmt: skip
    assert result.fired.tolist() == [False, True]


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
