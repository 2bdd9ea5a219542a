"""evaluate_detection on a small plan: every injected kind is found, clean data stays quiet."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command


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
