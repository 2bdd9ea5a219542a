"""Training rows for the pipeline's `export_events KIND --purpose training`: the behaviour features of
every scored account-window, with the ground-truth label where a truth file is given.

Call `training_frame(kind, start, end, truth=path_or_None)`; it returns a pandas DataFrame with one row
per (account, window): `account`, `window` (UTC), `score`, `flagged`, one column per window count
(`jumps`, `moves`, `odd_keys`, ...), per feature score (`score_jumps`, ...) and reported burstiness
(`jumps_burstiness`; the kind's columns, stable names), `quiet`, and `label` (1 abnormal / 0 normal / NA
when the account is not in the truth file or no truth is given) and `behaviour`. Rows that carried
information come from AccountWindow, exactly the features the minute scorer used (causal: a row uses no
event after its window); the quiet minutes of active accounts (no hit, score below 2: not stored) come
from `services.quiet_windows` — their counts from the enriched table, hit counts 0, scores NA, `quiet`
true.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from . import services
from .evaluation import read_truth
from .models import AccountWindow
from .scoring import SPECS, hit_columns


def training_frame(kind: str, start: datetime, end: datetime, truth: Path | None = None) -> pd.DataFrame:
    """Feature rows of `kind` with start <= window < end, labelled from `truth` when given."""
    rows = list(
        AccountWindow.objects.filter(kind=kind, window_start__gte=start, window_start__lt=end)
        .order_by("window_start", "account")
        .values_list("account", "window_start", "score", "flagged", "features")
    )
    frame = pd.DataFrame(
        {
            "account": [r[0] for r in rows],
            "window": pd.to_datetime([r[1] for r in rows], utc=True),
            "score": [r[2] for r in rows],
            "flagged": [r[3] for r in rows],
        }
    )
    features = pd.DataFrame([r[4] for r in rows])
    frame = pd.concat([frame, features.drop(columns=[c for c in features if c in frame], errors="ignore")], axis=1)
    frame["quiet"] = False
    quiet = services.quiet_windows(kind, start, end).assign(quiet=True, flagged=False, score=float("nan"))
    if len(quiet):
        frame = pd.concat([frame, quiet], ignore_index=True) if len(frame) else quiet
        frame = frame.sort_values(["window", "account"], kind="stable").reset_index(drop=True)
    spec = SPECS[kind]
    names = [r.name for r in spec.rates] + [r.name for r in spec.rules] + [r.name for r in spec.regularities]
    bursts = [f"{name}_burstiness" for name in spec.bursts]
    for column in [*hit_columns(kind), *(f"score_{name}" for name in names), *bursts]:
        if column not in frame:
            frame[column] = float("nan")
    frame["label"] = pd.array([pd.NA] * len(frame), dtype="Int8")
    frame["behaviour"] = pd.array([pd.NA] * len(frame), dtype="string")
    if truth is not None and len(frame):
        table = read_truth(truth)
        table = table[table["kind"] == kind] if "kind" in table else table
        table = table.drop_duplicates("account", keep="last").set_index("account")
        frame["label"] = frame["account"].map(table["abnormal"].astype(int)).astype("Int8")
        if "behaviour" in table:
            frame["behaviour"] = frame["account"].map(table["behaviour"]).astype("string")
    return frame
