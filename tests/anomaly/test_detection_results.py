"""Per sensor-minute detection results: stored by the real cycle, queryable through the API, kept 30 days."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pandas as pd
import pytest
from rest_framework.test import APIClient

from anomaly.models import CriteriaVersion, DetectionResult
from anomaly.services import detect
from anomaly.services.results import purge_old_results
from sensors.simulation import Fault

from .conftest import MINUTE

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_evaluated_sensor_minute_says_which_methods_ran_and_fired(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame]
) -> None:
    readings(faults=[Fault("spike", "003", MINUTE, MINUTE + timedelta(minutes=1))])
    result = detect.detect_minute(MINUTE)
    assert result is not None
    assert DetectionResult.objects.filter(minute=MINUTE).count() == 4
    client = APIClient()
    body = client.get("/api/v1/detection-results/", {"sensor": "003", "start": MINUTE.isoformat()}).json()
    (row,) = body["results"]
    assert (row["sensor"], row["flow_fired"], row["pressure_fired"]) == ("003", "0100", "000")
    value = row["methods"]["flow"]["value"]
    assert value["ran"] is True
    assert value["fired"] is True
    assert value["score"] >= 1
    # no forecast exists: predict could not judge, and says so rather than reporting a pass
    assert row["methods"]["flow"]["predict"] == {"ran": False, "fired": False, "score": 0.0, "state": "no_forecast"}
    assert set(row["methods"]["pressure"]) == {"system", "value", "predict"}
    quiet = client.get("/api/v1/detection-results/", {"fired": "false"}).json()["results"]
    assert sorted(r["sensor"] for r in quiet) == ["001", "002", "004"]
    flagged = client.get("/api/v1/detection-results/", {"fired": "true"}).json()["results"]
    assert [r["sensor"] for r in flagged] == ["003"]
    assert detect.detect_minute(MINUTE) is None  # evaluated once: no second set of results
    assert DetectionResult.objects.count() == 4


def test_results_are_kept_for_the_retention_period(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame]
) -> None:
    readings()
    detect.detect_minute(MINUTE)
    assert purge_old_results(now=MINUTE + timedelta(days=29, hours=23)) == (0, True)
    assert purge_old_results(now=MINUTE + timedelta(days=30, minutes=1)) == (4, True)
    assert not DetectionResult.objects.exists()
