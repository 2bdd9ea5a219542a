"""Replay a run's events window by window through the production scorer and compare with ground truth.

`replay` is the minute task's scoring loop in memory: the same `scoring.score_window`, the same carried
state and band history, one window after another in event-time order, so what the evaluation measures
is what the beat task would have flagged minute by minute (the beat task adds only database I/O).

Matching (per account, the truth file's rows): an account is flagged when any of its windows scores at
or above the threshold. Time to detection is in game seconds: from the account's first abnormal action
to the end of its first flagged window on the game clock. The generator's truth names the abnormal
accounts, not their first abnormal action; for coordinate jumps that is taken from the events as the
first move that covers JUMP_TRUTH_DISTANCE or more within JUMP_TRUTH_SECONDS of wall time after the
account's previous action (a normal step, sigma 40 per axis, covers 200 units with probability ~4e-6).
"""

from __future__ import annotations

import csv
import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import features, scoring

BAND_HISTORY_WINDOWS = 10
JUMP_TRUTH_DISTANCE = 200.0
JUMP_TRUTH_SECONDS = 1.0


def _game_seconds(values: pd.Series) -> np.ndarray:
    parts = values.astype(str).str.split(":", n=1, expand=True)
    return parts[0].astype(float).to_numpy() * 60 + parts[1].astype(float).to_numpy()


def _epoch(values: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(values, utc=True, format="ISO8601")
    return (stamps - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy()


def records_to_frame(
    kind: str, records: Iterable[dict[str, Any]], received_at: np.ndarray | None = None
) -> pd.DataFrame:
    """Raw generator/collector records (all values strings) -> the canonical columns of `features`.

    An ad record carries no time of its own (the campaign's dates only): enrichment stamps it with the
    collector's receive time, and so must the caller here (`received_at`, epoch seconds per record); an
    NDJSON file of ad records alone cannot be evaluated — load them through the collector and evaluate
    from the table."""
    raw = pd.json_normalize(list(records))
    if kind == "ad" and received_at is not None:
        return pd.DataFrame({"account": raw["User.account"], "ts": np.asarray(received_at, dtype=float),
                             "click": raw["User.click"].astype(str) == "true"})  # fmt: skip
    if kind == "lol":
        frame = pd.DataFrame({
            "id": raw["id"], "account": raw["account"], "ts": _epoch(raw["datetime"]),
            "game_s": _game_seconds(raw["ingametime"]), "method": raw["method"],
            "x": pd.to_numeric(raw["x"]), "y": pd.to_numeric(raw["y"]), "key": raw["inputkey"],
            "status": raw["status"].astype(int),
        })  # fmt: skip
        return frame.assign(buy_item=items_bought(frame))
    if kind == "hotel":
        return pd.DataFrame({"account": raw["account"], "ts": _epoch(raw["datetime"]), "method": raw["method"],
                             "status": raw["status"].astype(int)})  # fmt: skip
    if kind == "raid":
        game_s = _game_seconds(raw["gametime"])
        return pd.DataFrame({
            "account": raw["User.account"], "session": raw["sessionID"], "ts": _epoch(raw["startTime"]) + game_s,
            "game_s": game_s, "end_s": raw["Boss.endTime"].astype(float), "method": raw["method"],
            "x": pd.to_numeric(raw["x"]), "y": pd.to_numeric(raw["y"]), "status": raw["status"].astype(int),
            "success": raw["success"].astype(int),
        })  # fmt: skip
    raise ValueError(f"records of kind {kind!r} carry no event time: evaluate them from the database")


def items_bought(frame: pd.DataFrame) -> np.ndarray:
    """lol's `buy_item` as enrichment stores it: the account's /getItem rows so far in its game (the game
    is the one that started at ts - game clock), this row included; 0 on other methods' rows before any."""
    game = np.round(frame["ts"].to_numpy(float) - frame["game_s"].to_numpy(float), -1)
    buys = (frame["method"] == "/getItem").astype(int)
    order = np.lexsort((frame["ts"].to_numpy(float), game, pd.factorize(frame["account"])[0]))
    ordered = buys.iloc[order].groupby([frame["account"].to_numpy()[order], game[order]]).cumsum()
    result = np.empty(len(frame), dtype=np.int64)
    result[order] = ordered.to_numpy()
    return result


def replay(kind: str, frame: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Every account-window score of the run, oldest window first (the beat task's loop, in memory)."""
    frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
    # integer account codes: pandas string columns cost ~5x more per groupby than integers
    codes, names = pd.factorize(frame["account"])
    frame = frame.assign(account=codes)
    window = np.floor(frame["ts"].to_numpy() / 60.0) * 60.0
    state = pd.DataFrame()
    history: deque[dict[str, np.ndarray]] = deque(maxlen=BAND_HISTORY_WINDOWS)
    rows = []
    bounds = np.flatnonzero(np.diff(window)) + 1
    for start, end in zip(np.r_[0, bounds], np.r_[bounds, len(frame)], strict=True):
        events = frame.iloc[start:end]
        summed: dict[str, np.ndarray] = {}
        for hists in history:
            for name, counts in hists.items():
                summed[name] = summed.get(name, 0) + counts
        scored = scoring.score_window(
            kind, events, state=state, history=summed, window_ts=float(window[start]), threshold=threshold
        )
        state = scored.state
        history.append(scored.histograms)
        rows.append(scored.accounts.reset_index())
    if not rows:
        return pd.DataFrame()
    scores = pd.concat(rows, ignore_index=True)
    scores["account"] = np.asarray(names, dtype=object)[scores["account"].to_numpy(int)]
    return scores


def read_truth(path: Path) -> pd.DataFrame:
    """The generator's ground truth (CSV with a header, or NDJSON): account, abnormal, behaviour, ..."""
    text = path.read_text()
    if text.lstrip().startswith("{"):
        table = pd.DataFrame([json.loads(line) for line in text.splitlines() if line.strip()])
    else:
        table = pd.DataFrame(list(csv.DictReader(text.splitlines())))
    if "abnormal" not in table or "account" not in table:
        raise ValueError(f"{path}: a truth file needs the columns account and abnormal")
    table["abnormal"] = table["abnormal"].astype(str).str.lower().isin({"1", "true", "yes"})
    return table


def first_abnormal_action(
    frame: pd.DataFrame, accounts: Iterable[str], within_s: float = JUMP_TRUTH_SECONDS
) -> pd.DataFrame:
    """Per abnormal account: ts and game_s of its first coordinate jump (see the module docstring; raid's
    teleporters jump at any pace, so raid passes `within_s` = inf: a normal raid step, sigma 30 per axis,
    covers 200 units with probability ~2e-10)."""
    subset = frame[frame["account"].isin(set(accounts))].sort_values("ts", kind="stable")
    actions = features.lol_actions(subset, pd.DataFrame()).join(subset[["account", "ts", "game_s", "method"]])
    if "session" in subset:  # a raid player's first record in a room is not a move from the last room
        actions = actions[subset.groupby("account")["session"].shift(1) == subset["session"]]
    jumps = actions[(actions["method"] == "/move") & (actions["dist"] >= JUMP_TRUTH_DISTANCE)
                    & (actions["dt_wall"] <= within_s)]  # fmt: skip
    return jumps.sort_values("ts").groupby("account")[["ts", "game_s"]].first()


@dataclass(frozen=True)
class Report:
    summary: dict[str, Any]
    accounts: pd.DataFrame  # per abnormal account: flagged, first flagged window, time to detection


def evaluate(kind: str, frame: pd.DataFrame, truth: pd.DataFrame, threshold: float) -> Report:
    """Precision, recall, F1, time to detection and the false-positive rate of one run."""
    scores = replay(kind, frame, threshold)
    flagged_rows = scores[scores["flagged"]]
    first_flag = flagged_rows.groupby("account")["window_ts"].min()
    truth = truth.drop_duplicates("account", keep="last").set_index("account")
    active = truth.index.intersection(pd.Index(frame["account"].unique()))
    truth = truth.loc[active]
    abnormal = truth.index[truth["abnormal"]]
    normal = truth.index[~truth["abnormal"]]
    flagged = set(first_flag.index)
    tp = len(flagged & set(abnormal))
    fp = len(flagged & set(normal))
    fn = len(abnormal) - tp
    precision = tp / (tp + fp) if tp + fp else (1.0 if not len(abnormal) else 0.0)
    recall = tp / len(abnormal) if len(abnormal) else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    per_account = pd.DataFrame(index=pd.Index(abnormal, name="account"))
    per_account["behaviour"] = truth.loc[abnormal, "behaviour"] if "behaviour" in truth else ""
    per_account["flagged"] = per_account.index.isin(flagged)
    ttd = pd.Series(np.nan, index=per_account.index)
    if kind == "lol" and len(abnormal):
        first = first_abnormal_action(frame, abnormal)
        game_start = (frame["ts"] - frame["game_s"]).groupby(frame["account"]).median()
        detected_game_s = first_flag.reindex(per_account.index) + 60.0 - game_start.reindex(per_account.index)
        per_account["first_abnormal_game_s"] = first["game_s"].reindex(per_account.index)
        ttd = detected_game_s - per_account["first_abnormal_game_s"]
        per_account["detected_game_s"] = detected_game_s
    elif kind == "raid" and len(abnormal):
        # raid's wall clock is the room's start plus its game clock: wall seconds are game seconds
        first = first_abnormal_action(frame, abnormal, within_s=np.inf)
        per_account["first_abnormal_game_s"] = first["game_s"].reindex(per_account.index)
        ttd = first_flag.reindex(per_account.index) + 60.0 - first["ts"].reindex(per_account.index)
    elif len(abnormal):
        # hotel and ad bots behave so from their first record: seconds from it (wall clock)
        first_ts = frame.groupby("account")["ts"].min().reindex(per_account.index)
        ttd = first_flag.reindex(per_account.index) + 60.0 - first_ts
    per_account["time_to_detection_s"] = ttd
    peak = scores.groupby("account")["score"].max()
    per_account["peak_score"] = peak.reindex(per_account.index)
    valid = ttd.dropna()
    summary = {
        "kind": kind,
        "threshold": threshold,
        "accounts": len(truth),
        "abnormal": len(abnormal),
        "flagged": len(flagged & set(truth.index)),
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "false_positive_rate": round(fp / len(normal), 5) if len(normal) else 0.0,
        "time_to_detection_s": {
            "median": float(valid.median()) if len(valid) else None,
            "max": float(valid.max()) if len(valid) else None,
        },
        "max_normal_score": float(peak.reindex(normal).max()) if len(normal) else None,
        "windows": int(scores["window_ts"].nunique()) if len(scores) else 0,
    }
    return Report(summary=summary, accounts=per_account.reset_index())


def isolation_forest(kind: str, scores: pd.DataFrame, seed: int = 0) -> pd.Series:
    """The unsupervised side-by-side: an IsolationForest over each account's highest decayed rates
    (scikit-learn, contamination "auto"); True where it calls the account an outlier."""
    from sklearn.ensemble import IsolationForest

    spec = scoring.SPECS[kind]
    columns = {}
    for rate in spec.rates:
        trials = scores[f"n_{rate.name}"].to_numpy(float)
        hits = scores[f"k_{rate.name}"].to_numpy(float)
        columns[rate.name] = np.where(trials > 0, hits / np.maximum(trials, 1e-9), 0.0)
    for rule in spec.rules:
        columns[rule.name] = scores[rule.count].to_numpy(float)
    table = pd.DataFrame(columns).groupby(scores["account"].to_numpy()).max()
    model = IsolationForest(random_state=seed, contamination="auto").fit(table.to_numpy())
    return pd.Series(model.predict(table.to_numpy()) == -1, index=table.index)


def side_by_side(kind: str, frame: pd.DataFrame, truth: pd.DataFrame, flagged_by_rules: set[str]) -> dict[str, Any]:
    """Precision/recall/FP rate of the IsolationForest next to the rule-based score's."""
    scores = replay(kind, frame, float("inf"))
    outliers = isolation_forest(kind, scores)
    truth = truth.drop_duplicates("account", keep="last").set_index("account")
    abnormal = set(truth.index[truth["abnormal"]])
    normal = set(truth.index[~truth["abnormal"]])

    def rates(flagged: set[str]) -> dict[str, float]:
        tp, fp = len(flagged & abnormal), len(flagged & normal)
        return {
            "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
            "recall": round(tp / len(abnormal), 4) if abnormal else 1.0,
            "false_positive_rate": round(fp / len(normal), 5) if normal else 0.0,
        }

    return {"rules": rates(flagged_by_rules), "isolation_forest": rates(set(outliers.index[outliers.to_numpy()]))}


# The scenarios for lol, as generator options (eventlogs/generators/lol.py honours the extras).
SCENARIOS: dict[str, dict[str, Any]] = {
    "described": {},
    "players_x10": {"players": 1000, "rooms": 100},
    "subtle": {"extra": {"suspect_jump_p": 0.175, "suspect_jump_scale": 0.6}},
    "burst": {"extra": {"suspect_burst": (300.0, 1200.0)}},  # cheats 5 minutes in every 20
    "no_cheater": {"extra": {"no_suspect": True}},
}


def generate(kind: str, seed: int, scenario: str = "described", abnormal: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One generated run in memory: canonical events and the truth table. `abnormal`: the generator's
    extra abnormal accounts (hotel, raid, ad; lol's suspect is whoever plays Viktor)."""
    from datetime import UTC, datetime

    from eventlogs.generators import GENERATORS, Options

    options = Options(
        start=datetime(2024, 3, 24, 11, 0, tzinfo=UTC), seed=seed, abnormal=abnormal, **SCENARIOS[scenario]
    )
    records: list[dict[str, Any]] = []
    offsets: list[float] = []
    truth: list[dict[str, Any]] = []
    for game in GENERATORS[kind](options):
        records += [event.record for event in game.events]
        offsets += [event.offset for event in game.events]
        truth += [vars(row) for row in game.truth]
    # ad: the instant a realtime sender hands the record over stands for the collector's receive time (the
    # batch it travels in is received up to --flush-seconds, 1 s, later)
    received = options.start.timestamp() + np.asarray(offsets) if kind == "ad" else None
    return records_to_frame(kind, records, received), pd.DataFrame(truth)


def run_scenario(
    scenario: str, seeds: Iterable[int], threshold: float, kind: str = "lol", abnormal: int = 0
) -> dict[str, Any]:
    """A scenario over many seeds: totals, worst and median time to detection, FP accounts."""
    per_seed = []
    delays: list[float] = []
    for seed in seeds:
        frame, truth = generate(kind, seed, scenario, abnormal)
        report = evaluate(kind, frame, truth, threshold)
        per_seed.append(report.summary)
        delays += report.accounts["time_to_detection_s"].dropna().tolist()
    tp = sum(s["true_positives"] for s in per_seed)
    fp = sum(s["false_positives"] for s in per_seed)
    abnormal = sum(s["abnormal"] for s in per_seed)
    normal = sum(s["accounts"] - s["abnormal"] for s in per_seed)
    precision = tp / (tp + fp) if tp + fp else (1.0 if not abnormal else 0.0)
    recall = tp / abnormal if abnormal else 1.0
    return {
        "kind": kind,
        "scenario": scenario,
        "seeds": len(per_seed),
        "threshold": threshold,
        "abnormal": abnormal,
        "normal": normal,
        "true_positives": tp,
        "false_positives": fp,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0,
        "false_positive_rate": round(fp / normal, 5) if normal else 0.0,
        "seeds_with_false_positive": sum(1 for s in per_seed if s["false_positives"]),
        "time_to_detection_s": {
            "median": float(np.median(delays)) if delays else None,
            "p90": float(np.percentile(delays, 90)) if delays else None,
            "max": float(np.max(delays)) if delays else None,
            "within_120_s": round(float(np.mean(np.asarray(delays) <= 120)), 4) if delays else None,
        },
        "max_normal_score": max((s["max_normal_score"] or 0.0) for s in per_seed),
    }
