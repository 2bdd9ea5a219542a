"""evaluate_detection on a small plan: every injected kind is found, clean data stays quiet."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from django.core.management import call_command

from anomaly.evaluation import at_cadence


@pytest.mark.django_db
def test_small_evaluation_meets_the_targets() -> None:
    out = io.StringIO()
    call_command("evaluate_detection", "--sensors", "6", "--days", "12", "--json", stdout=out)
    report = json.loads(out.getvalue())
    kinds = report["faults"]["kinds"]
    assert set(kinds) == {"burst", "dropout", "leak", "spike", "stuck"}
    for kind in ("burst", "spike", "stuck"):
        assert kinds[kind]["recall_within_target"] >= 0.9, kind
        assert kinds[kind]["precision"] >= 0.9, kind
    assert all(leak["nights_from_20pct_to_flag"] <= 3 for leak in report["leaks"])
    assert report["clean"]["false_events_per_sensor_week"] < 1


def test_at_cadence_keeps_the_readings_a_five_minute_logger_stores() -> None:
    start = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    readings = pd.DataFrame({"ts": pd.to_datetime([start + timedelta(minutes=m) for m in range(30)]), "flow": 1.0})
    kept = at_cadence(readings, 5)
    assert [ts.minute for ts in kept["ts"]] == [0, 5, 10, 15, 20, 25]
    assert at_cadence(readings, 1) is readings
