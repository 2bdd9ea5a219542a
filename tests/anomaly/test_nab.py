"""NAB-style scoring (anomaly.nab) and `evaluate_detection --csv-dir`: checked by hand and against NAB's scorer."""

from __future__ import annotations

import importlib.util
import io
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from anomaly.detectors import alarms
from anomaly.nab import Report, score_alarms

DEV = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "nab-dev"
START = datetime(2026, 1, 1, tzinfo=UTC)


def stamps(count: int) -> pd.Series:
    return pd.Series([START + timedelta(minutes=5 * i) for i in range(count)])


def window(first: int, last: int) -> tuple[str, str]:
    return ((START + timedelta(minutes=5 * first)).isoformat(), (START + timedelta(minutes=5 * last)).isoformat())


def flags_at(count: int, *rows: int) -> np.ndarray:
    flags = np.zeros(count, dtype=bool)
    flags[list(rows)] = True
    return flags


def test_scores_by_hand() -> None:
    times, wins = stamps(100), [window(40, 59)]  # probation: the first 15 rows
    assert score_alarms(times, flags_at(100, 40), wins, "f").raw == pytest.approx(1.0)
    assert score_alarms(times, flags_at(100), wins, "f").raw == pytest.approx(-1.0)
    # an alarm in probation is ignored; one before the window costs the full 0.11; only the first in counts
    result = score_alarms(times, flags_at(100, 5, 20, 40, 45), wins, "f")
    assert result.raw == pytest.approx(1.0 - 0.11)
    assert (result.alarms, result.alarms_in_windows, result.windows_found) == (3, 2, 1)
    # the middle of the window: sigmoid(-0.5) / sigmoid(-1)
    middle = (2 / (1 + math.exp(-2.5)) - 1) / (2 / (1 + math.exp(-5)) - 1)
    assert score_alarms(times, flags_at(100, 50), wins, "f").raw == pytest.approx(middle)
    # right after the window an alarm costs almost nothing; three window lengths later the full 0.11
    assert score_alarms(times, flags_at(100, 40, 60), wins, "f").raw == pytest.approx(
        1.0 + 0.11 * (2 / (1 + math.exp(5 / 19)) - 1)
    )
    assert score_alarms(times, flags_at(100, 40, 99), wins, "f").raw == pytest.approx(1.0 - 0.11, abs=1e-4)
    report = Report([score_alarms(times, flags_at(100, 40), wins, "a"), score_alarms(times, flags_at(100), wins, "b")])
    assert report.score == pytest.approx(50.0)
    assert report.as_dict()["mean_detection_delay_seconds"] == 0.0


def _nab_reference() -> Callable[..., tuple[float, dict[str, int]]]:
    spec = importlib.util.spec_from_file_location("nabscore", DEV / "nabscore.py")
    assert spec is not None, f"NAB's scorer is expected at {DEV}"
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.score_file


@pytest.mark.parametrize(
    "name",
    ["realAdExchange/exchange-3_cpc_results.csv", "realTraffic/speed_7578.csv", "realTraffic/TravelTime_387.csv"],
)
def test_matches_nabs_scorer_on_the_detectors_own_alarms(name: str) -> None:
    """The dev set's nabscore.py reproduces NAB's 144 published per-file scores; ours must agree with it."""
    windows = json.loads((DEV / "windows.json").read_text())[name]
    frame = pd.read_csv(DEV / "data" / name)
    times = pd.to_datetime(frame["timestamp"], utc=True)
    _, starts, _ = alarms("likelihood", list(times.dt.to_pydatetime()), frame["value"].to_numpy(float), 10)
    assert starts.sum() >= 3  # a case with hits and false alarms to score, not an empty one
    ours = score_alarms(times, starts, windows, name)
    reference, _ = _nab_reference()(
        list(frame["timestamp"].astype(str)),
        starts.astype(float),
        [(a[:19], b[:19]) for a, b in windows],
        {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11},
        1.0,
    )
    assert ours.raw == pytest.approx(reference, abs=1e-9)


def write_series(path: Path, values: np.ndarray) -> None:
    pd.DataFrame({"timestamp": [t.strftime("%Y-%m-%d %H:%M:%S") for t in stamps(len(values))], "value": values}).to_csv(
        path, index=False
    )


@pytest.mark.django_db
def test_command_scores_a_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    spiky = 10 + rng.normal(0, 0.5, 1000)
    spiky[800] = 40  # far outside anything seen: the default method alarms on this row
    (tmp_path / "group").mkdir()
    write_series(tmp_path / "group" / "spiky.csv", spiky)
    write_series(tmp_path / "quiet.csv", 10 + rng.normal(0, 0.5, 1000))
    windows = {"group/spiky.csv": [list(window(790, 829))], "quiet.csv": [list(window(500, 539))]}
    (tmp_path / "windows.json").write_text(json.dumps(windows))
    out = io.StringIO()
    call_command("evaluate_detection", "--csv-dir", str(tmp_path), "--windows", str(tmp_path / "windows.json"),
                 "--json", stdout=out)  # fmt: skip
    report = json.loads(out.getvalue())
    assert report["windows"] == 2
    assert report["files"] == 2
    assert report["per_file"]["group/spiky.csv"]["found"] == 1
    assert report["per_file"]["quiet.csv"]["found"] == 0
    assert report["episode_recall"] == 0.5
    assert report["mean_detection_delay_seconds"] == 10 * 300  # row 800, window from row 790, 5-minute rows
    expected_spiky = (2 / (1 + math.exp(5 * -30 / 40)) - 1) / (2 / (1 + math.exp(-5)) - 1)
    false_cost = 0.11 * (report["alarms"] - report["episode_precision"] * report["alarms"])
    assert report["nab_standard_score"] == pytest.approx(100 * (expected_spiky - 1 + 2 - false_cost) / 4, abs=0.01)


def test_command_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "windows.json").write_text(json.dumps({"missing.csv": []}))
    with pytest.raises(CommandError, match=r"missing\.csv: listed in windows\.json but not found"):
        call_command("evaluate_detection", "--csv-dir", str(tmp_path), "--windows", str(tmp_path / "windows.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CommandError, match="cannot read the windows JSON"):
        call_command("evaluate_detection", "--csv-dir", str(tmp_path), "--windows", str(tmp_path / "bad.json"))
    with pytest.raises(CommandError, match="--csv-dir and --windows go together"):
        call_command("evaluate_detection", "--csv-dir", str(tmp_path))
