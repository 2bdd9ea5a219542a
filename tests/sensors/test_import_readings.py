"""import_readings: a SCADA export lands in readings once, in the project's units and UTC; bad rows are named."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from sensors.models import Reading, Sensor


def write(path: Path, rows: list[list[str]], header: tuple[str, ...] = ("Time", "Tag", "Q", "P")) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("import_readings", str(path), "--timestamp-col", "Time", "--flow-col", "Q", "--pressure-col", "P",
                 *args, stdout=out, stderr=io.StringIO())  # fmt: skip
    return out.getvalue()


@pytest.fixture
def sensors(db: None) -> None:
    Sensor.objects.create(code="101")
    Sensor.objects.create(code="102")


@pytest.mark.usefixtures("sensors")
def test_five_minute_export_imports_once_converted_to_utc_and_project_units(tmp_path: Path) -> None:
    rows = [[f"2026-01-05 00:{m:02d}:00", code, "10", "350"] for m in range(0, 60, 5) for code in ("101", "102")]
    path = write(tmp_path / "scada.csv", rows)
    summary = run(path, "--sensor-col", "Tag", "--units", "flow=l/s,pressure=kPa", "--tz", "Europe/Berlin")
    assert "24 rows, 24 stored, 0 already stored, 0 rejected" in summary
    first = Reading.objects.get(sensor__code="101", ts=datetime(2026, 1, 4, 23, 0, tzinfo=UTC))  # CET = UTC+1
    assert first.flow == pytest.approx(36.0)  # 10 l/s = 36 m³/h
    assert first.pressure == pytest.approx(3.5)  # 350 kPa = 3.5 bar
    assert Reading.objects.filter(sensor__code="102").count() == 12
    again = run(path, "--sensor-col", "Tag", "--units", "flow=l/s,pressure=kPa", "--tz", "Europe/Berlin")
    assert "24 rows, 0 stored, 24 already stored" in again
    assert Reading.objects.count() == 24


@pytest.mark.usefixtures("sensors")
def test_bad_rows_are_named_and_kept_the_good_ones_stored(tmp_path: Path) -> None:
    rows = [
        ["2026-01-05T00:00:00Z", "10", "3"],
        ["yesterday", "10", "3"],
        ["2026-01-05T00:15:00Z", "ten", "3"],
        ["2026-01-05T00:30:00Z", "10", "99"],  # above the sensor's 16 bar
        ["2026-01-05T00:45:30Z", "11", "3.1"],  # seconds are dropped: the 00:45 reading
    ]
    path = write(tmp_path / "one.csv", rows, header=("Time", "Q", "P"))
    summary = run(path, "--sensor", "101")
    assert "5 rows, 2 stored, 0 already stored, 3 rejected" in summary
    assert "line 3: unparseable timestamp" in summary
    assert "line 4: flow is not a number" in summary
    assert "line 5: pressure outside the sensor's range" in summary
    rejects = list(csv.reader((tmp_path / "one.csv.rejected.csv").open()))
    assert rejects[0] == ["line", "reason"]
    assert [row[0] for row in rejects[1:]] == ["3", "4", "5"]
    assert Reading.objects.filter(ts=datetime(2026, 1, 5, 0, 45, tzinfo=UTC)).exists()


@pytest.mark.usefixtures("sensors")
def test_strict_imports_nothing_when_a_row_is_bad(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", [["2026-01-05 00:00", "999", "1", "3"], ["2026-01-05 00:05", "101", "1", "3"]])
    with pytest.raises(CommandError, match="line 2: sensor 999 is not registered"):
        run(path, "--sensor-col", "Tag", "--strict")
    assert not Reading.objects.exists()


@pytest.mark.usefixtures("sensors")
def test_dst_overlap_is_a_named_error_not_a_guess(tmp_path: Path) -> None:
    path = write(tmp_path / "dst.csv", [["2026-10-25 02:30", "101", "1", "3"], ["2026-10-25 04:00", "101", "1", "3"]])
    summary = run(path, "--sensor-col", "Tag", "--tz", "Europe/Berlin")
    assert "line 2: timestamp ambiguous or nonexistent in Europe/Berlin" in summary
    assert Reading.objects.count() == 1


@pytest.mark.usefixtures("sensors")
def test_setup_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", [["2026-01-05 00:00", "101", "1", "3"]])
    with pytest.raises(CommandError, match="no column 'Flow'"):
        call_command("import_readings", str(path), "--timestamp-col", "Time", "--flow-col", "Flow",
                     "--pressure-col", "P", "--sensor-col", "Tag")  # fmt: skip
    with pytest.raises(CommandError, match="bad --units part 'flow=gallons'"):
        run(path, "--sensor-col", "Tag", "--units", "flow=gallons")
    with pytest.raises(CommandError, match="sensor '555' is not registered"):
        run(path, "--sensor", "555")
    with pytest.raises(CommandError, match="unknown time zone 'Mars/Base'"):
        run(path, "--sensor-col", "Tag", "--tz", "Mars/Base")
    with pytest.raises(CommandError, match="no such file"):
        run(tmp_path / "missing.csv", "--sensor", "101")
