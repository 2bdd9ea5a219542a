"""manage.py train_forecast: a recorded run, a JSON summary per metric, clear errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from django.conf import LazySettings
from django.core.management import CommandError, call_command

from forecasting.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


def test_trains_one_metric_and_prints_its_summary(
    load_readings: Callable[..., dict], tiny_training: Path, settings: LazySettings
) -> None:
    settings.FORECAST_CANDIDATES = ["lstm", "boosted"]  # the LSTM's epochs drive the progress bar
    load_readings(["001"], days=30)
    out, err = StringIO(), StringIO()
    call_command(
        "train_forecast", "--metric", "pressure", "--epochs", "2", "--since", "2026-09-02", stdout=out, stderr=err
    )
    (line,) = out.getvalue().strip().splitlines()
    summary = json.loads(line)
    assert summary["metric"] == "pressure"
    assert summary["rows"] > 0
    assert summary["windows"] > 0
    assert summary["epochs"] <= 2
    assert summary["seconds"] > 0
    assert summary["baseline_mae"] > 0
    assert summary["status"] in {"active", "rejected"}
    assert "epoch" in err.getvalue()  # the progress bar
    run = TrainingRun.objects.get()
    assert (run.requested_by, run.status, run.metrics) == ("cli", "succeeded", ["pressure"])
    assert ModelVersion.objects.get().data_start.isoformat().startswith("2026-09-02")


def test_too_little_history_is_a_command_error(load_readings: Callable[..., dict], tiny_training: Path) -> None:
    load_readings(["001"], days=5)
    with pytest.raises(CommandError, match="at least 672 hours"):
        call_command("train_forecast", stdout=StringIO(), stderr=StringIO())
    assert TrainingRun.objects.get().status == "failed"


@pytest.mark.parametrize(
    ("args", "message"), [(["--since", "soon"], "is not a date"), (["--epochs", "0"], "at least 1")]
)
def test_bad_options_are_refused(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("train_forecast", *args, stdout=StringIO(), stderr=StringIO())
