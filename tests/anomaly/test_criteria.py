"""Criteria: from the initial file at first start, from the database once it holds enough days; versioned."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from anomaly import criteria
from anomaly.models import Criteria, CriteriaVersion
from sensors.models import Sensor
from sensors.simulation import simulate

from .conftest import store

pytestmark = pytest.mark.django_db
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


def test_compute_on_crafted_data() -> None:
    """A flat 10 with noise, a run of 7 identical values, and night minima of 4 (then 6 on the last night)."""
    minutes = pd.date_range(START, periods=3 * 1440, freq="min", tz=UTC)
    rng = np.random.default_rng(0)
    flow = 10 + rng.normal(0, 1, len(minutes))
    local_hour = minutes.tz_convert("Asia/Seoul").hour
    flow[(local_hour >= 2) & (local_hour < 3)] = 4 + rng.normal(
        0, 0.01, int(((local_hour >= 2) & (local_hour < 3)).sum())
    )
    flow[100:107] = 12.5
    frame = pd.DataFrame(
        {"sensor": "001", "ts": minutes, "flow": flow, "pressure": 5 + rng.normal(0, 0.1, len(minutes))}
    )
    rows = criteria.compute_criteria(frame, criteria.Parameters(value_k=6, iqr_fence=3, residual_k=6))
    flow_rows = rows[rows["metric"] == "flow"].set_index("hour")
    noon = flow_rows.loc[12]
    at_noon = flow[local_hour == 12]
    assert noon["median"] == pytest.approx(np.median(at_noon))
    assert noon["mad"] == pytest.approx(np.median(np.abs(at_noon - np.median(at_noon))))
    sigma, iqr = 1.4826 * noon["mad"], noon["q3"] - noon["q1"]
    assert noon["lower"] == pytest.approx(min(noon["median"] - 6 * sigma, noon["q1"] - 3 * iqr))
    assert noon["upper"] == pytest.approx(max(noon["median"] + 6 * sigma, noon["q3"] + 3 * iqr))
    assert int(flow_rows["max_flat_run"].iloc[0]) == 7
    assert flow_rows["night_baseline"].iloc[0] == pytest.approx(4, abs=0.05)
    assert rows[rows["metric"] == "pressure"]["night_baseline"].isna().all()
    assert set(rows["hour"]) == set(range(24))


def test_first_start_builds_from_the_initial_file(settings: Any, tmp_path: Path) -> None:
    for code in ("001", "002"):
        Sensor.objects.create(code=code)
    path = tmp_path / "initial.csv.gz"
    frame = simulate(["001", "002", "777"], START, 2 * 1440).readings
    with gzip.open(path, "wt") as handle:
        frame.assign(ts=frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(handle, index=False)
    settings.ANOMALY_CRITERIA_FILE = path
    version = criteria.ensure_criteria()
    assert version is not None
    assert (version.source, version.source_detail, version.sensors) == ("file", str(path), 2)
    assert version.parameters["skipped_codes"] == ["777"]  # not a registered sensor
    assert version.data_start == START
    # sensors x metrics x hours; two weekdays, so no weekend rows
    assert Criteria.objects.filter(version=version).count() == 2 * 2 * 24
    assert not Criteria.objects.filter(version=version, weekend=True).exists()
    assert criteria.ensure_criteria() == version  # once


def test_shipped_sample_file_is_valid(settings: Any) -> None:
    frame = criteria.read_readings_file(settings.ANOMALY_CRITERIA_FILE)
    assert set(frame.columns) >= {"sensor", "ts", "flow", "pressure", "status"}
    assert frame["ts"].max() - frame["ts"].min() >= timedelta(days=13)
    assert frame["sensor"].nunique() == 10


def test_database_takes_over_once_it_holds_enough_days(settings: Any, tmp_path: Path) -> None:
    sensors = {code: Sensor.objects.create(code=code) for code in ("001", "002")}
    store(simulate(["001", "002"], START, 4 * 1440, seed=3).readings, sensors)
    settings.ANOMALY_CRITERIA_FILE = tmp_path / "absent.csv"
    settings.ANOMALY_CRITERIA_DB_DAYS = 5
    with pytest.raises(criteria.CriteriaError, match="does not exist"):
        criteria.build_criteria()  # 4 days < 5: the file is still the source, and it is missing
    settings.ANOMALY_CRITERIA_DB_DAYS = 3
    version = criteria.build_criteria()
    assert version.source == "database"
    assert version.readings == 3 * 1440 * 2
    assert version.data_end == START + timedelta(days=4)
    only_one = criteria.build_criteria(["002"])
    assert only_one.sensors == 1
    rows = criteria.current_rows(START + timedelta(hours=3))
    assert dict(zip(rows["sensor_id"], rows["version_id"], strict=False)) == {
        sensors["001"].pk: version.pk,
        sensors["002"].pk: only_one.pk,
    }


def test_build_criteria_command(tmp_path: Path) -> None:
    Sensor.objects.create(code="001")
    path = tmp_path / "data.csv"
    simulate(["001"], START, 1440).readings.to_csv(path, index=False)
    out = io.StringIO()
    call_command("build_criteria", "--from-file", str(path), "--sensor", "001", stdout=out)
    assert out.getvalue().startswith(f"criteria v{CriteriaVersion.objects.get().pk}: file")
    (tmp_path / "bad.csv").write_text("sensor,when,flow\n001,2026-01-01,1\n")
    with pytest.raises(CommandError, match="lacks column"):
        call_command("build_criteria", "--from-file", str(tmp_path / "bad.csv"))
