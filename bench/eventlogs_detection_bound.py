"""How soon could any test flag the lol suspect with zero false accounts? An oracle bound (issue 11).

The generator's suspect differs from normal players in one way only: 35 % of its moves jump anywhere on
the map 0.15-0.6 s after its previous action (keys, deaths and purchases are drawn alike for everyone:
the script prints the rates to show it). The oracle knows that: per move, hit = a move of 200 units or
more within 0.6 s of the previous action, with the hit rates of normal players (p0) and suspects (p1)
measured on the calibration seeds, and it runs the exact per-move CUSUM of log10(p1/p0) per hit and
log10((1-p1)/(1-p0)) per other move — the most powerful sequential test for this evidence. Its threshold
is the lowest that flags no normal account on the calibration seeds (1000-1009); the suspects' time to
detection is then measured on the evaluation seeds (1-20) from the first jump, both at the move that
crosses (a scorer that ran after every action) and at the end of that minute (a minute scorer, as
pipewatch's). Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
CALIBRATION = range(1000, 1010)
EVALUATION = range(1, 21)
FAR, QUICK = 200.0, 0.6


def moves(seed: int) -> pd.DataFrame:
    """The run's moves with their distance and seconds from the account's previous action, hit, suspect."""
    from eventlogs.detection import evaluation, features

    frame, truth = evaluation.generate("lol", seed)
    frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
    actions = features.lol_actions(frame, pd.DataFrame())
    suspects = set(truth.loc[truth["abnormal"], "account"])
    table = frame.join(actions[["dist", "dt_wall"]])
    table["suspect"] = table["account"].isin(suspects)
    table["start"] = frame["ts"].min()
    table["odd_key"] = table["key"].isin(["alt", "tab"])
    return table


def cusum(values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values))
    level = 0.0
    for i, value in enumerate(values):
        level = max(level + value, 0.0)
        out[i] = level
    return out


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    import django

    django.setup()
    calibration = pd.concat([moves(seed).assign(seed=seed) for seed in CALIBRATION], ignore_index=True)
    evaluation = pd.concat([moves(seed).assign(seed=seed) for seed in EVALUATION], ignore_index=True)
    judged = calibration[(calibration["method"] == "/move") & calibration["dt_wall"].notna()]
    hit = (judged["dist"] >= FAR) & (judged["dt_wall"] < QUICK)
    p0, p1 = float(hit[~judged["suspect"]].mean()), float(hit[judged["suspect"]].mean())
    per_hit, per_miss = np.log10(p1 / p0), np.log10((1 - p1) / (1 - p0))

    def peaks(table: pd.DataFrame) -> pd.DataFrame:
        rows = []
        judged = table[(table["method"] == "/move") & table["dt_wall"].notna()]
        for (seed, account), group in judged.groupby(["seed", "account"], sort=False):
            hits = ((group["dist"] >= FAR) & (group["dt_wall"] < QUICK)).to_numpy()
            level = cusum(np.asarray(hits, dtype=float) * (per_hit - per_miss) + per_miss)
            rows.append({"seed": seed, "account": account, "suspect": bool(group["suspect"].iloc[0]),
                         "peak": level.max(), "level": level, "t": group["ts"].to_numpy() - group["start"].iloc[0],
                         "first_jump": (group["ts"].to_numpy() - group["start"].iloc[0])[hits].min()
                         if hits.any() else np.nan})  # fmt: skip
        return pd.DataFrame(rows)

    calibrated = peaks(calibration)
    threshold = float(calibrated.loc[~calibrated["suspect"], "peak"].max()) + 0.01
    tested = peaks(evaluation)
    suspects = tested[tested["suspect"]]
    crossing, minute_end = [], []
    for row in suspects.itertuples():
        above = np.flatnonzero(row.level >= threshold)
        if not len(above):
            crossing.append(np.inf)
            minute_end.append(np.inf)
            continue
        at = row.t[above[0]]
        crossing.append(at - row.first_jump)
        minute_end.append(np.floor(at / 60) * 60 + 60 - row.first_jump)
    crossing_s, minute_s = np.asarray(crossing), np.asarray(minute_end)
    jumps_per_minute = float(
        (evaluation["suspect"] & (evaluation["dist"] >= FAR) & (evaluation["dt_wall"] < QUICK)).sum()
        / (evaluation.loc[evaluation["suspect"], ["seed", "account"]].drop_duplicates().shape[0] * 60)
    )

    def rates(column: str) -> dict[str, float]:
        return {
            "normal": round(float(evaluation.loc[~evaluation["suspect"], column].mean()), 4),
            "suspect": round(float(evaluation.loc[evaluation["suspect"], column].mean()), 4),
        }

    def summary(values: np.ndarray) -> dict[str, float]:
        return {
            "median": round(float(np.median(values)), 1),
            "p90": round(float(np.percentile(values, 90)), 1),
            "within_120_s": round(float(np.mean(values <= 120)), 3),
        }

    evaluation["dead"] = evaluation["status"] == 1
    print(json.dumps({
        "bench": "eventlogs_detection_bound",
        "hit": f"move >= {FAR:g} units within {QUICK:g} s of the previous action",
        "p0_normal_per_move": round(p0, 5),
        "p1_suspect_per_move": round(p1, 4),
        "decades_per_hit": round(float(per_hit), 2),
        "decades_per_other_move": round(float(per_miss), 3),
        "suspect_hits_per_minute": round(jumps_per_minute, 2),
        "threshold": round(threshold, 2),
        "normal_false_accounts_evaluation": int((tested.loc[~tested["suspect"], "peak"] >= threshold).sum()),
        "normal_accounts_evaluation": int((~tested["suspect"]).sum()),
        "suspects": len(suspects),
        "time_to_detection_any_action_s": summary(crossing_s),
        "time_to_detection_minute_end_s": summary(minute_s),
        "odd_key_rate": rates("odd_key"),
        "dead_record_rate": rates("dead"),
        "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
