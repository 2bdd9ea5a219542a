"""What the event logs page shows: throughput per kind, failed events with reasons, flagged accounts with
their reasons, and one account's feature timeline.

Throughput and failure counts are eventlogs' own stats query; accounts and windows are behaviour
detection's tables (AccountState: the latest notable window per account) and its timeline (the stored
windows and the quiet minutes between them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from django.utils import timezone

from eventlogs.detection.models import AccountState, AccountWindow
from eventlogs.detection.services import threshold
from eventlogs.detection.services import timeline as detection_timeline
from eventlogs.models import FailedEvent, Kind
from eventlogs.services.queries import stats

from .charts import Chart, column, epoch_seconds

SPAN = timedelta(hours=24)
FAILED_SHOWN = 30
ACCOUNTS_SHOWN = 50
TIMELINE_WINDOWS = 1440  # a day of minutes, as eventlogs' account API
KIND_COLOURS = {"lol": "#1d4ed8", "hotel": "#15803d", "raid": "#c2410c", "ad": "#7c3aed"}


def throughput_chart(hours: list[dict[str, Any]], start: datetime, end: datetime) -> Chart:
    """Records received per hour and kind over [start, end): one series per kind, 0 for a quiet hour."""
    index = pd.date_range(start.replace(minute=0, second=0, microsecond=0), end, freq="1h", tz="UTC", inclusive="left")
    frame = pd.DataFrame(hours, columns=["kind", "hour", "records"])
    frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
    wide = frame.pivot_table(index="hour", columns="kind", values="records", aggfunc="sum").reindex(index).fillna(0)
    chart = Chart(name="eventlogs-throughput", title="records received per hour", unit="records/h")
    chart.x = epoch_seconds(index)
    for kind in Kind.values:
        values = wide[kind] if kind in wide else pd.Series(0.0, index=index)
        chart.add(Kind(kind).label, column(values, 0), color=KIND_COLOURS.get(kind, "#475569"), width=1.5)
    return chart


def timeline(kind: str, account: str) -> tuple[AccountState | None, Chart | None, list[AccountWindow]]:
    """One account's state, its score and window counts over its latest scored minutes (quiet minutes, whose
    score is not kept, leave a gap in the score and show their counts), and its flagged windows."""
    state = AccountState.objects.filter(kind=kind, account=account).first()
    rows = detection_timeline(kind, account, TIMELINE_WINDOWS)
    if not rows:
        return state, None, []
    frame = pd.DataFrame([row["features"] for row in rows]).astype("float64")
    counts = [name for name in frame.columns if not name.startswith(("state_", "score_"))]
    chart = Chart(name="eventlogs-timeline", title=f"{kind} {account}: score and window counts")
    chart.x = epoch_seconds(pd.Series([row["window"] for row in rows]))
    scores = [float("nan") if row["score"] is None else row["score"] for row in rows]
    chart.add("score (decades of evidence)", column(scores), color="#b91c1c", width=2)
    chart.add("flag threshold", column([threshold()] * len(rows)), color="#b91c1c", dash=True, width=1)
    palette = ["#1d4ed8", "#15803d", "#c2410c", "#7c3aed", "#0f766e", "#be185d", "#a16207", "#475569"]
    for position, name in enumerate(counts[: len(palette)]):
        chart.add(name, column(frame[name]), color=palette[position], width=1)
    flagged = list(
        AccountWindow.objects.filter(kind=kind, account=account, flagged=True).order_by("-window_start")[:20]
    )
    return state, chart, flagged


@dataclass
class EventlogsPage:
    start: datetime
    end: datetime
    throughput: Chart
    totals: list[dict[str, Any]]
    failed_counts: list[dict[str, Any]]
    failed: list[FailedEvent]
    pending_batches: int
    lag_seconds: float
    accounts: list[AccountState]
    kind: str
    account: str
    state: AccountState | None
    timeline: Chart | None
    flagged_windows: list[AccountWindow]
    threshold: float


def eventlogs_page(kind: str = "", account: str = "", now: datetime | None = None) -> EventlogsPage:
    now = now or timezone.now()
    start = now - SPAN
    data = stats(start, now)
    totals = (
        pd.DataFrame(data["hours"], columns=["kind", "batches", "records", "enriched", "failed"])
        .groupby("kind")[["batches", "records", "enriched", "failed"]]
        .sum()
        .reset_index()
        .to_dict("records")
    )
    accounts = list(AccountState.objects.filter(flagged=True).order_by("-score", "kind", "account")[:ACCOUNTS_SHOWN])
    if not account and accounts:
        kind, account = accounts[0].kind, accounts[0].account
    state, chart, flagged = timeline(kind, account) if kind and account else (None, None, [])
    return EventlogsPage(
        start=start,
        end=now,
        throughput=throughput_chart(data["hours"], start, now),
        totals=totals,
        failed_counts=data["failed"],
        failed=list(FailedEvent.objects.filter(recovered_at=None).order_by("-created_at")[:FAILED_SHOWN]),
        pending_batches=data["pending_batches"],
        lag_seconds=data["lag_seconds"],
        accounts=accounts,
        kind=kind,
        account=account,
        state=state,
        timeline=chart,
        flagged_windows=flagged,
        threshold=threshold(),
    )
