"""The event logs page: throughput per kind and hour, failed events with reasons, flagged accounts, timeline."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from console.services import eventlogs
from eventlogs.detection.models import AccountState, AccountWindow
from eventlogs.models import Batch, FailedEvent


def build_logs(now: datetime) -> dict[str, object]:
    """Batches of three kinds over 30 hours, a failed and a recovered event, a flagged account's 10 windows."""
    for hours_ago, kind, records in ((1, "lol", 100), (1, "lol", 50), (2, "hotel", 30), (30, "raid", 999)):
        Batch.objects.create(kind=kind, received_at=now - timedelta(hours=hours_ago), offset=0, length=10,
                             records=records, enriched=records - 1, failed=1, status=Batch.Status.ENRICHED)  # fmt: skip
    failed = FailedEvent.objects.create(kind="lol", line=3, raw='{"x": "a"}', reason="schema", schema_path="x",
                                        message="'a' is not of type 'integer'")  # fmt: skip
    FailedEvent.objects.create(kind="lol", line=4, raw="{", reason="invalid_json", message="Expecting value",
                               recovered_at=now)  # fmt: skip
    reasons = [{"feature": "jump_rate", "label": "teleport rate", "score": 9.5, "value": 0.4, "population": 0.01,
                "ratio": 40.0}]  # fmt: skip
    AccountState.objects.create(kind="lol", account="cheater", window_start=now - timedelta(minutes=1), score=9.5,
                                flagged=True, reasons=reasons, first_flagged_at=now - timedelta(minutes=5))  # fmt: skip
    AccountState.objects.create(kind="lol", account="honest", window_start=now - timedelta(minutes=1), score=0.3)
    for minute in range(10):
        AccountWindow.objects.create(
            kind="lol", account="cheater", window_start=now - timedelta(minutes=10 - minute), score=minute * 1.0,
            flagged=minute >= 7, features={"moves": 10.0 + minute, "jumps": float(minute), "state_moves": 30.0},
            reasons=reasons if minute >= 7 else [],
        )  # fmt: skip
    return {"now": now, "failed": failed}


@pytest.fixture
def logs(db: None) -> dict[str, object]:
    return build_logs(timezone.now())


def test_page_data(logs: dict[str, object]) -> None:
    page = eventlogs.eventlogs_page()
    assert page.throughput.points == 25  # 24 hours from now back touch 25 clock hours
    lol = next(series for series in page.throughput.series if series["label"] == "game (lol)")
    assert sum(value or 0 for value in lol["values"]) == 150
    assert {row["kind"]: row["records"] for row in page.totals} == {"lol": 150, "hotel": 30}  # raid: 30 h ago
    assert page.failed == [logs["failed"]]
    assert [(row["reason"], row["count"], row["unrecovered"]) for row in page.failed_counts] == [
        ("invalid_json", 1, 0),
        ("schema", 1, 1),
    ]
    assert [state.account for state in page.accounts] == ["cheater"]
    assert (page.kind, page.account) == ("lol", "cheater")  # the top flagged account's timeline by default
    assert page.timeline is not None
    assert page.timeline.points == 10
    labels = [series["label"] for series in page.timeline.series]
    assert labels[:2] == ["score (decades of evidence)", "flag threshold"]
    assert sorted(labels[2:]) == ["jumps", "moves"]  # the window counts; the decayed state is not drawn
    assert len(page.flagged_windows) == 3  # scores 7, 8 and 9 reach the threshold (7)


def test_page_renders_for_a_viewer(logs: dict[str, object], viewer_client: Client) -> None:
    response = viewer_client.get("/eventlogs/?kind=lol&account=cheater")
    assert response.status_code == 200
    assert b"teleport rate" in response.content
    assert b"is not of type" in response.content
    assert b'href="/eventlogs/"' in viewer_client.get("/sensors/").content  # in the navigation now


def test_empty_page_says_what_to_do(viewer_client: Client) -> None:
    response = viewer_client.get("/eventlogs/")
    assert b"No batch received in the last 24 h" in response.content
    assert b"No account is flagged" in response.content
