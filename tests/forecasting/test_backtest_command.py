"""backtest_forecast on generated CSV exports: real-world timestamps, gaps, junk rows, no peeking."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from forecasting.services.backtest import to_utc
from sensors.simulation import simulate

pytestmark = pytest.mark.usefixtures("tiny_training")

START = datetime(2026, 9, 20, tzinfo=UTC)
NEW_YORK = "America/New_York"


def export(path: Path, *, days: int, every_minutes: int = 5, local_naive: bool = False, shuffle: bool = False) -> Path:
    """A CSV like an operator's: `time,flow`, with junk rows and a missing stretch."""
    readings = simulate(["007"], START, days * 1440, seed=5).readings
    readings = readings[readings["ts"].dt.minute % every_minutes == 0]
    readings = readings[
        (readings["ts"] < START + pd.Timedelta(days=20)) | (readings["ts"] > START + pd.Timedelta(days=20, hours=9))
    ]
    if local_naive:
        stamps = readings["ts"].dt.tz_convert(NEW_YORK).dt.strftime("%Y-%m-%d %H:%M")
    else:
        stamps = readings["ts"].dt.tz_convert("Asia/Seoul").map(lambda moment: moment.isoformat())
    frame = pd.DataFrame({"time": stamps.to_numpy(), "flow": readings["flow"].map("{:.3f}".format).to_numpy()})
    junk = pd.DataFrame({"time": ["not a time", stamps.iloc[10], stamps.iloc[11], ""], "flow": ["1.0", "", "abc", "2"]})
    frame = pd.concat([frame, junk], ignore_index=True)
    if shuffle:
        frame = frame.sample(frac=1.0, random_state=1)
    frame.to_csv(path, index=False)
    return path


def run(*args: str) -> dict:
    out = StringIO()
    call_command("backtest_forecast", *args, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_naive_local_times_across_dst_changes_follow_the_stated_rules() -> None:
    raw = pd.Series(
        [
            "2026-11-01 01:30",  # first pass (EDT, -4)
            "2026-11-01 01:30",  # repeat: second pass (EST, -5)
            "2026-03-08 02:30",  # inside the skipped hour: shifted forward to 03:00 EDT
            "2026-01-01T09:00:00+09:00",
            "2026-01-01T00:00:00Z",
            "yesterday-ish",
        ]
    )
    parsed = to_utc(raw, NEW_YORK)
    assert list(parsed[:5]) == [
        pd.Timestamp("2026-11-01 05:30", tz="UTC"),
        pd.Timestamp("2026-11-01 06:30", tz="UTC"),
        pd.Timestamp("2026-03-08 07:00", tz="UTC"),
        pd.Timestamp("2026-01-01 00:00", tz="UTC"),
        pd.Timestamp("2026-01-01 00:00", tz="UTC"),
    ]
    assert pd.isna(parsed.iloc[5])


def test_backtest_prints_one_json_line_and_writes_predictions(tmp_path: Path) -> None:
    path = export(tmp_path / "site.csv", days=45, shuffle=True)
    predictions = tmp_path / "predictions.csv"
    report = run(
        str(path),
        "--timestamp-col",
        "time",
        "--value-col",
        "flow",
        "--train-until",
        "2026-10-25T00:00:00+00:00",
        "--origins",
        "3",
        "--step",
        "2d",
        "--predictions",
        str(predictions),
    )
    assert report["rows_skipped"] == {"bad_timestamp": 2, "bad_value": 2}
    assert report["rows_used"] == report["rows_read"] - 4
    assert report["origins"] == 3
    assert report["horizon_hours"] == 168
    assert report["training_hours"] == 35 * 24
    for side in ("model", "baseline"):
        for key in ("mae_24h", "max_abs_24h", "mae_25_168h", "mae", "mape"):
            assert report[side][key] is not None, (side, key)
            assert np.isfinite(report[side][key]), (side, key)
    assert report["baseline"]["mae"] > 0
    assert report["seconds"] > 0
    rows = list(csv.DictReader(predictions.open()))
    assert len(rows) == 3 * 168
    assert list(rows[0]) == ["timestamp", "origin", "actual", "model", "baseline", "lower", "upper"]
    assert all(float(row["lower"]) < float(row["upper"]) for row in rows)
    assert 0 < report["band_coverage"] <= 1
    assert report["candidate"] in {"profile", "lstm", "boosted", "blend"}
    assert len(report["shares"]) == 7  # per lead day
    assert all(sum(day.values()) == pytest.approx(1) for day in report["shares"])
    assert report["validation_candidates_mae"]["chosen"] <= min(report["validation_candidates_mae"].values())
    assert rows[0]["origin"] == "2026-10-25T00:00:00+00:00"
    assert rows[168]["origin"] == "2026-10-27T00:00:00+00:00"
    # The baseline is the same hour a week earlier, as read from the file.
    week_later = next(row for row in rows if row["timestamp"] == "2026-11-01T00:00:00+00:00")
    week_before = next(row for row in rows if row["timestamp"] == "2026-10-25T00:00:00+00:00")
    assert float(week_later["baseline"]) == pytest.approx(float(week_before["actual"]), rel=1e-4)


def test_forecasts_never_peek_past_their_origin(tmp_path: Path) -> None:
    path = export(tmp_path / "site.csv", days=40, every_minutes=60, local_naive=True)
    args = [
        "--timestamp-col",
        "time",
        "--value-col",
        "flow",
        "--train-until",
        "2026-10-25 00:00",
        "--tz",
        NEW_YORK,
        "--horizon",
        "24h",
    ]
    first = run(str(path), *args, "--predictions", str(tmp_path / "a.csv"))
    frame = pd.read_csv(path)
    times = pd.to_datetime(frame["time"], errors="coerce")
    frame.loc[times >= pd.Timestamp("2026-10-25 00:00"), "flow"] = "99999"  # the future changes wildly
    frame.to_csv(path, index=False)
    second = run(str(path), *args, "--predictions", str(tmp_path / "b.csv"))
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert len(a) == 24
    np.testing.assert_allclose(a["model"], b["model"], rtol=1e-4)
    np.testing.assert_allclose(a["baseline"], b["baseline"], rtol=1e-6)
    assert (b["actual"] == 99999).all()
    assert first["model"]["mae_25_168h"] is None  # a 24-hour backtest scores the first day only
    assert second["baseline"]["mae_24h"] > first["baseline"]["mae_24h"]


def test_exogenous_inputs_are_used_when_given(tmp_path: Path) -> None:
    """An input that knows the future (here: the flow itself, a perfect "forecast") must cut the error."""
    path = export(tmp_path / "site.csv", days=45, every_minutes=60)
    frame = pd.read_csv(path)
    weather = frame.assign(temp=frame["flow"]).rename(columns={"time": "stamp"})[["stamp", "temp"]]
    weather.to_csv(tmp_path / "weather.csv", index=False)
    args = [str(path), "--timestamp-col", "time", "--value-col", "flow", "--train-until", "2026-10-25T00:00:00+00:00"]
    without = run(*args, "--origins", "3", "--step", "2d")
    exog = ["--exog", str(tmp_path / "weather.csv"), "--exog-cols", "temp", "--exog-timestamp-col", "stamp"]
    with_exog = run(*args, "--origins", "3", "--step", "2d", *exog)
    assert with_exog["validation_candidates_mae"]["boosted"] < 0.9 * without["validation_candidates_mae"]["boosted"]
    # Out of sample the profile (which reads no exogenous input) keeps a share on some lead days: 0.93x.
    assert with_exog["model"]["mae"] < 0.97 * without["model"]["mae"]
    with pytest.raises(CommandError, match="go together"):
        call_command("backtest_forecast", *args, "--exog", str(tmp_path / "weather.csv"))
    with pytest.raises(CommandError, match="no column 'rain'"):
        call_command("backtest_forecast", *args, *exog[:2], "--exog-cols", "rain", "--exog-timestamp-col", "stamp")


@pytest.mark.parametrize(
    ("days", "extra", "message"),
    [
        (45, ["--value-col", "pressure"], "no column 'pressure'"),
        (20, ["--value-col", "flow"], "at least 672 hours"),
        (45, ["--value-col", "flow", "--horizon", "3d"], "invalid choice"),
    ],
)
def test_unusable_requests_are_clear_errors(tmp_path: Path, days: int, extra: list[str], message: str) -> None:
    path = export(tmp_path / "site.csv", days=days, every_minutes=30)
    train_until = "2026-10-09T00:00:00Z" if days == 20 else "2026-10-25T00:00:00Z"
    with pytest.raises((CommandError, SystemExit)) as error:
        call_command("backtest_forecast", str(path), "--timestamp-col", "time", "--train-until", train_until, *extra)
    if isinstance(error.value, CommandError):
        assert message in str(error.value)


def test_coarser_than_hourly_sampling_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "daily.csv"
    days = pd.date_range("2026-01-01", periods=90, freq="D", tz="UTC")
    pd.DataFrame({"time": days.map(lambda day: day.isoformat()), "flow": np.arange(90.0)}).to_csv(path, index=False)
    with pytest.raises(CommandError, match="hourly or finer sampling is needed"):
        call_command(
            "backtest_forecast",
            str(path),
            "--timestamp-col",
            "time",
            "--value-col",
            "flow",
            "--train-until",
            "2026-03-01T00:00:00Z",
        )


def test_train_until_after_the_data_is_refused(tmp_path: Path) -> None:
    path = export(tmp_path / "site.csv", days=30, every_minutes=60)
    with pytest.raises(CommandError, match="after the last data hour"):
        call_command(
            "backtest_forecast",
            str(path),
            "--timestamp-col",
            "time",
            "--value-col",
            "flow",
            "--train-until",
            "2027-01-01T00:00:00Z",
        )
