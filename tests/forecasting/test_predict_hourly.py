"""The hourly prediction run: baseline or model, idempotent, hand-over to sensors, broken artifacts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from django.conf import LazySettings
from django.test import Client

from forecasting.metrics import ACTIVE_MODEL_TIMESTAMP, MODEL_LOAD_FAILURES
from forecasting.models import Forecast, HourlyMean, ModelVersion
from forecasting.services import registry
from forecasting.services.data import load_hourly
from forecasting.services.forecaster import Forecaster
from forecasting.services.model import build_model
from forecasting.services.prediction import daily_rows, predict_hourly
from forecasting.services.series import Scaler
from forecasting.services.training import train_metric
from sensors.models import HourlyPrediction, Reading, Sensor
from sensors.predictions import daily_forecasts
from sensors.protocol import format_forecast_rows

from .conftest import START

pytestmark = pytest.mark.django_db

ISSUED = START + timedelta(days=15)


def test_without_a_model_the_baseline_serves_and_reruns_change_nothing(load_readings: Callable[..., dict]) -> None:
    sensors = load_readings(["001", "002"], days=15)
    Sensor.objects.create(code="003")  # active, never reported

    report = predict_hourly(ISSUED + timedelta(minutes=2))
    assert report["issued_at"] == ISSUED.isoformat()
    assert report["metrics"]["flow"]["source"] == "seasonal naive"
    assert report["metrics"]["flow"]["forecast_sensors"] == 2
    assert report["metrics"]["flow"]["skipped_no_readings"] == 1
    assert Forecast.objects.count() == 2 * 2 * 168
    assert not Forecast.objects.filter(model_version__isnull=False).exists()

    # Seasonal naive: the hour a week earlier.
    series = load_hourly("pressure")
    target = ISSUED + timedelta(hours=5)
    stored = Forecast.objects.get(sensor=sensors["002"], metric="pressure", issued_at=ISSUED, target=target)
    expected = series["002"].at(pd.DatetimeIndex([pd.Timestamp(target - timedelta(days=7))]))[0]
    assert stored.value == pytest.approx(expected, rel=1e-5)

    def by_natural_key() -> dict[tuple, float]:
        rows = Forecast.objects.values_list("sensor_id", "metric", "issued_at", "target", "value")
        return {row[:4]: row[4] for row in rows}

    before = by_natural_key()
    predict_hourly(ISSUED + timedelta(minutes=40))  # same issue hour: the same rows, replaced
    assert by_natural_key() == pytest.approx(before)
    assert Forecast.objects.count() == 2 * 2 * 168
    assert HourlyPrediction.objects.count() == 2 * 24
    handed = HourlyPrediction.objects.get(sensor=sensors["001"], hour=ISSUED)
    flow = Forecast.objects.get(sensor=sensors["001"], metric="flow", issued_at=ISSUED, target=ISSUED)
    assert handed.flow == pytest.approx(flow.value)

    predict_hourly(ISSUED + timedelta(hours=1))  # the next hour is a new issue
    assert Forecast.objects.values("issued_at").distinct().count() == 2


def test_a_sensor_silent_for_two_weeks_gets_no_forecast(load_readings: Callable[..., dict]) -> None:
    load_readings(["001"], days=3)
    # Its readings are in the 4 weeks a forecast reads, but none in the last two: no forecast.
    report = predict_hourly(START + timedelta(days=30))
    assert report["metrics"]["flow"]["forecast_sensors"] == 0
    assert report["metrics"]["flow"]["skipped_no_recent_readings"] == 1
    report = predict_hourly(START + timedelta(days=40))  # nothing at all in the 4 weeks
    assert report["metrics"]["flow"]["skipped_no_readings"] == 1
    assert not Forecast.objects.exists()


def test_an_active_model_serves_and_daily_rows_follow_the_seed_layout(
    load_readings: Callable[..., dict], tiny_training: Path
) -> None:
    sensors = load_readings(["001", "002"], days=35)
    version = train_metric("flow")
    registry.activate(version, "test")
    issued = START + timedelta(days=35)
    report = predict_hourly(issued)
    assert report["metrics"]["flow"]["source"] == f"model v{version.pk}"
    assert report["metrics"]["pressure"]["source"] == "seasonal naive"
    assert ACTIVE_MODEL_TIMESTAMP.labels(metric="flow")._value.get() == version.created_at.timestamp()
    flows = Forecast.objects.filter(metric="flow")
    assert flows.count() == 2 * 168
    assert set(flows.values_list("model_version", flat=True)) == {version.pk}
    assert np.isfinite(list(flows.values_list("value", flat=True))).all()

    lines = daily_rows(sensors["001"], issued)
    assert len(lines) == 7
    code, first, last, day, flow, pressure = lines[0].split()
    assert (code, day) == ("001", "1")
    assert len(first) == len(last) == 6
    hourly = flows.filter(sensor=sensors["001"], target__lt=issued + timedelta(hours=24))
    assert float(flow) == pytest.approx(np.mean(list(hourly.values_list("value", flat=True))), abs=1e-3)
    assert float(pressure) > 0
    # The same 7 rows are handed to sensors, which sends them to the device after the frame at the hour.
    handed = daily_forecasts(["001"])["001"]
    assert format_forecast_rows(handed) == lines


@pytest.mark.parametrize("damage", ["garbage", "missing"])
def test_a_broken_artifact_falls_back_to_the_baseline_and_is_logged(
    load_readings: Callable[..., dict], tiny_training: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    load_readings(["001"], days=15)
    version = ModelVersion.objects.create(
        metric="flow",
        status=ModelVersion.Status.ACTIVE,
        data_start=START,
        data_end=ISSUED,
        validation_start=ISSUED,
        artifact_dir="flow/v999",
    )
    directory = tiny_training / "flow" / "v999"
    if damage == "garbage":
        directory.mkdir(parents=True)
        (directory / "model.keras").write_bytes(b"not a keras file")
        (directory / "scalers.json").write_text('{"format": 1, "scalers": {}, "time_zone": "UTC"}')
    failures = MODEL_LOAD_FAILURES.labels(metric="flow")._value.get()
    with caplog.at_level(logging.ERROR, logger="forecasting"):
        report = predict_hourly(ISSUED)
    assert report["metrics"]["flow"]["source"] == "seasonal naive"
    assert Forecast.objects.filter(metric="flow", model_version__isnull=True).count() == 168
    assert MODEL_LOAD_FAILURES.labels(metric="flow")._value.get() == failures + 1
    assert any(f"active model {version} unusable" in record.getMessage() for record in caplog.records)
    assert ("unreadable" if damage == "garbage" else "artifact missing") in caplog.text


def test_the_rollup_picks_up_late_readings_within_the_margin(
    load_readings: Callable[..., dict], settings: LazySettings
) -> None:
    sensors = load_readings(["001"], days=15)
    predict_hourly(ISSUED)
    assert HourlyMean.objects.count() == 15 * 24  # all of it: inside the 4 weeks a forecast reads
    late_hour = ISSUED - timedelta(hours=3)
    before = HourlyMean.objects.get(sensor=sensors["001"], hour=late_hour)
    # Readings of the 3rd-last hour arrive late (a spool back-fill): 4 more minutes at a high flow.
    for minute in (1, 2, 3, 4):
        Reading.objects.create(
            sensor=sensors["001"], ts=late_hour + timedelta(minutes=minute), flow=1000.0, pressure=before.pressure or 0
        )
    report = predict_hourly(ISSUED + timedelta(hours=1))
    assert report["rolled_up_hours"] == settings.FORECAST_LATE_DATA_HOURS
    after = HourlyMean.objects.get(sensor=sensors["001"], hour=late_hour)
    assert after.rows == before.rows + 4
    assert after.flow is not None
    assert before.flow is not None
    assert after.flow > before.flow
    assert report["phase_seconds"]["read"] > 0  # the phase was timed, not left at a default


def test_the_rollup_ignores_non_finite_readings(load_readings: Callable[..., dict]) -> None:
    sensors = load_readings(["001"], days=15)
    hour = ISSUED - timedelta(hours=1)
    Reading.objects.create(sensor=sensors["001"], ts=hour + timedelta(minutes=1), flow=float("nan"), pressure=4.0)
    Reading.objects.create(sensor=sensors["001"], ts=hour + timedelta(minutes=2), flow=float("inf"), pressure=4.0)
    predict_hourly(ISSUED)
    mean = HourlyMean.objects.get(sensor=sensors["001"], hour=hour)
    assert mean.rows == 6 + 2
    assert mean.flow is not None
    assert np.isfinite(mean.flow)
    assert np.isfinite(list(Forecast.objects.filter(metric="flow").values_list("value", flat=True))).all()


def test_a_model_producing_nan_is_replaced_by_the_baseline(
    load_readings: Callable[..., dict], tiny_training: Path, caplog: pytest.LogCaptureFixture
) -> None:
    load_readings(["001"], days=15)
    model = build_model(4)
    layer = model.get_layer("linear")
    layer.set_weights([np.full_like(weight, np.nan) for weight in layer.get_weights()])
    version = ModelVersion.objects.create(
        metric="pressure", data_start=START, data_end=ISSUED, validation_start=ISSUED, mae=1.0, baseline_mae=2.0
    )
    fitted = SimpleNamespace(model=Forecaster("lstm", lstm=model), scalers={}, params={"time_zone": "UTC"})
    registry.save_artifact(version, fitted)  # type: ignore[arg-type]
    registry.activate(version, "test")
    failures = MODEL_LOAD_FAILURES.labels(metric="pressure")._value.get()
    with caplog.at_level(logging.ERROR, logger="forecasting"):
        report = predict_hourly(ISSUED)
    assert report["metrics"]["pressure"]["source"] == "seasonal naive"
    assert "non-finite" in caplog.text
    assert MODEL_LOAD_FAILURES.labels(metric="pressure")._value.get() == failures + 1
    values = list(Forecast.objects.filter(metric="pressure").values_list("value", flat=True))
    assert len(values) == 168
    assert np.isfinite(values).all()


def test_the_run_shows_on_the_metrics_endpoint(load_readings: Callable[..., dict]) -> None:
    load_readings(["001"], days=15)
    Sensor.objects.create(code="002")
    predict_hourly(ISSUED)
    text = Client().get("/metrics").content.decode()
    assert 'pipewatch_forecast_rows_written_total{metric="flow",source="baseline"}' in text
    assert 'pipewatch_forecast_sensors_skipped_total{metric="pressure",reason="no_readings"}' in text
    assert "pipewatch_forecast_predict_seconds_count" in text


def test_a_sensor_offline_for_six_hours_still_gets_a_banded_forecast_flagged_degraded(
    load_readings: Callable[..., dict], tiny_training: Path
) -> None:
    sensors = load_readings(["001", "002"], days=15)
    Reading.objects.filter(sensor=sensors["002"], ts__gte=ISSUED - timedelta(hours=6)).delete()
    # A real serving forecaster: the seasonal profile with a calibrated band (-0.5, +0.7 x recent spread).
    version = ModelVersion.objects.create(
        metric="flow", data_start=START, data_end=ISSUED, validation_start=ISSUED, mae=1.0, baseline_mae=2.0
    )
    band = [[-0.5, 0.7]] * 7
    scalers = {"001": Scaler(100.0, 10.0), "002": Scaler(100.0, 10.0)}
    fitted = SimpleNamespace(model=Forecaster("profile", band=band), scalers=scalers, params={"time_zone": "UTC"})
    registry.save_artifact(version, fitted)  # type: ignore[arg-type]
    registry.activate(version, "test")

    report = predict_hourly(ISSUED + timedelta(minutes=2))
    assert report["metrics"]["flow"]["forecast_sensors"] == 2
    assert report["metrics"]["flow"]["degraded"] == 1
    offline = Forecast.objects.filter(sensor=sensors["002"], metric="flow", issued_at=ISSUED)
    assert offline.count() == 168
    assert set(offline.values_list("degraded", flat=True)) == {True}
    assert not Forecast.objects.filter(sensor=sensors["001"], degraded=True).exists()
    for row in offline:  # the band is (-0.5, +0.7) x the recent spread (in scaled units) x the scale
        assert np.isfinite(row.value)
        assert row.lower is not None
        assert row.upper is not None
        assert row.lower < row.value < row.upper
        assert (row.value - row.lower) / (row.upper - row.value) == pytest.approx(0.5 / 0.7)
    # The baseline (pressure: no model) has no band.
    assert not Forecast.objects.filter(metric="pressure", lower__isnull=False).exists()
    body = Client().get("/api/v1/forecasts/?sensor=002&metric=flow").json()
    first = body["results"][0] if "results" in body else body[0]
    assert first["degraded"] is True
    assert first["lower"] < first["value"] < first["upper"]
