"""The hourly host roll-up: answers equal to the raw aggregation, incremental refresh, late samples, retention."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from monitoring.models import HostHour, HostSample
from monitoring.services import queries, rollup
from monitoring.services.queries import SCALAR_COLUMNS, SERIES
from monitoring.tasks import purge_host_hours, rollup_host_hours

T0 = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def varying(index: int) -> dict[str, Any]:
    """Irregular values in every scalar column. Floats are multiples of 1/64, so their sums are exact
    whatever order the database adds them in, and the two paths can be compared byte for byte."""
    return {
        "cpu_percent": ((index * 37) % 101) / 4,
        "load_1": (index % 13) / 64,
        "load_5": (index % 7) / 8,
        "load_15": (index % 5) / 2,
        "memory_percent": ((index * 11) % 97) / 2,
        "memory_used_bytes": 1_000_000_000 + index * 977,
        "memory_available_bytes": 7_000_000_000 - index * 977,
        "memory_total_bytes": 8_000_000_000 + (index % 2),
        "swap_percent": (index % 3) / 4,
        "swap_used_bytes": index * 4096,
        "swap_total_bytes": 2**31,
        "disk_percent": 40 + (index % 9) / 8,
        "disk_read_bytes_per_second": float((index * 7919) % 5003),
        "disk_write_bytes_per_second": ((index * 104729) % 65537) / 16,
        "net_sent_bytes_per_second": float((index * 31) % 1009),
        "net_recv_bytes_per_second": ((index * 7) % 5003) / 32,
    }


def test_every_scalar_column_is_rolled_up_as_mean_and_max() -> None:
    fields = {field.name for field in HostHour._meta.get_fields()}
    assert {f"{column}_{agg}" for column in SCALAR_COLUMNS for agg in ("avg", "max")} <= fields


@pytest.fixture
def two_hosts(make_samples: Callable[..., list[HostSample]]) -> None:
    """About 5.5 hours of samples of two hosts, starting off an hour's edge, 40 s and 55 s apart."""
    make_samples("a", T0 + timedelta(minutes=13, seconds=7), 500, step=timedelta(seconds=40), values=varying)
    make_samples("b", T0 + timedelta(minutes=2), 360, step=timedelta(seconds=55), values=lambda i: varying(3 * i + 1))


def series_answers(client: APIClient) -> dict[tuple[str, str, str], bytes]:
    """Every series x agg x host filter at step=1h, over a range whose ends are not on an hour's edge."""
    answers = {}
    for series in SERIES:
        for agg in ("avg", "max"):
            for host in ("a", None):
                params = {"step": "1h", "agg": agg, "limit": "1000"}
                params |= {
                    "start": (T0 + timedelta(minutes=30)).isoformat(),
                    "end": (T0 + timedelta(hours=5, minutes=20)).isoformat(),
                }
                if host:
                    params["host"] = host
                response = client.get(f"/api/v1/metrics/{series}", params)
                assert response.status_code == 200, response.content
                answers[series, agg, str(host)] = response.content
    return answers


def reads_rollup(queries_run: CaptureQueriesContext) -> bool:
    """Whether a query read hours of the roll-up (not only its newest hour)."""
    column = f'"{HostHour._meta.db_table}"."samples"'
    return any(column in query["sql"] for query in queries_run.captured_queries)


def test_step_1h_from_the_rollup_equals_the_raw_aggregation(token_client: APIClient, two_hosts: None) -> None:
    with CaptureQueriesContext(connection) as raw_queries:
        raw = series_answers(token_client)  # nothing rolled up yet: every bucket from the samples
    assert not reads_rollup(raw_queries)

    assert rollup.refresh(until=T0 + timedelta(hours=4, minutes=10)) == 4 + 4  # hours 0-3 of both hosts
    with CaptureQueriesContext(connection) as rolled_queries:
        rolled = series_answers(token_client)  # hours 1-3 from the roll-up, 0:30-1:00 and 4:00-5:20 raw

    assert reads_rollup(rolled_queries)
    assert rolled == raw
    assert b'"samples":90' in raw["cpu", "avg", "a"]  # a whole hour of host a: 3,600 s / 40 s


def test_limit_takes_the_newest_buckets_across_the_rollup_and_the_samples(
    token_client: APIClient, two_hosts: None
) -> None:
    params = {"step": "1h", "limit": "3", "end": (T0 + timedelta(hours=4, minutes=30)).isoformat()}
    raw = token_client.get("/api/v1/metrics/cpu", params).json()
    rollup.refresh(until=T0 + timedelta(hours=4))
    rolled = token_client.get("/api/v1/metrics/cpu", params).json()
    assert rolled == raw
    assert [(point["timestamp"], point["host"]) for point in rolled["results"]] == [
        ("2026-05-01T03:00:00Z", "a"),
        ("2026-05-01T04:00:00Z", "b"),
        ("2026-05-01T04:00:00Z", "a"),
    ]


@pytest.mark.parametrize("hours", [1, 2])
@pytest.mark.parametrize("agg", ["avg", "max"])
def test_chart_buckets_of_whole_hours_equal_the_raw_aggregation(two_hosts: None, hours: int, agg: str) -> None:
    columns = sorted(SCALAR_COLUMNS)

    def rows() -> list[dict[str, Any]]:
        return queries.bucket_rows(
            columns, host="b", start=T0, end=T0 + timedelta(hours=6), seconds=hours * 3600, agg=agg
        )

    raw = rows()
    rollup.refresh(until=T0 + timedelta(hours=4))
    with CaptureQueriesContext(connection) as rolled_queries:
        rolled = rows()

    assert reads_rollup(rolled_queries)
    assert [row["timestamp"] for row in rolled] == [row["timestamp"] for row in raw]
    for rolled_row, raw_row in zip(rolled, raw, strict=True):
        assert rolled_row.keys() == raw_row.keys()
        assert (rolled_row["host_name"], rolled_row["samples"]) == (raw_row["host_name"], raw_row["samples"])
        # a 2-hour bucket is the samples-weighted mean of two hourly means: equal up to rounding
        assert [rolled_row[column] for column in columns] == pytest.approx([raw_row[column] for column in columns])


@override_settings(MONITORING_ROLLUP_LATE_HOURS=3)
def test_refresh_is_idempotent_and_rereads_the_late_data_margin(make_samples: Callable[..., list]) -> None:
    make_samples("a", T0, 6 * 720, values=varying)  # 6 hours at 5 s
    assert rollup.refresh(until=T0 + timedelta(hours=6)) == 6
    stored = list(HostHour.objects.order_by("hour").values())
    assert rollup.refresh(until=T0 + timedelta(hours=6)) == 3  # hours 3-5 re-read: a 3-hour margin below
    assert list(HostHour.objects.order_by("hour").values()) == stored

    # an agent back from a database outage sends samples of hours already rolled up
    make_samples("a", T0 + timedelta(hours=4, seconds=2), 10, values=lambda _: {"cpu_percent": 100.0})
    make_samples("a", T0 + timedelta(hours=1, seconds=2), 10, values=lambda _: {"cpu_percent": 100.0})
    rollup.refresh(until=T0 + timedelta(hours=6))
    by_hour = {row.hour: row for row in HostHour.objects.all()}
    assert by_hour[T0 + timedelta(hours=4)].samples == 730  # within the margin: counted
    assert by_hour[T0 + timedelta(hours=4)].cpu_percent_max == 100.0
    assert by_hour[T0 + timedelta(hours=1)].samples == 720  # beyond it: not until a rebuild from `since`
    assert rollup_host_hours(since=T0.isoformat()) == 6
    assert HostHour.objects.get(hour=T0 + timedelta(hours=1)).samples == 730


def test_first_run_rolls_up_every_stored_hour_and_never_the_current_one(make_samples: Callable[..., list]) -> None:
    assert rollup.refresh() == 0  # no sample yet
    make_samples("a", T0 + timedelta(minutes=30), 40, step=timedelta(minutes=30))  # 20 hours
    with time_machine.travel(T0 + timedelta(hours=20, minutes=5), tick=False):
        assert rollup_host_hours() == 20  # hours 0-19; hour 20 is not complete
    assert HostHour.objects.latest("hour").hour == T0 + timedelta(hours=19)
    assert queries.rolled_until() == T0 + timedelta(hours=20)


@override_settings(MONITORING_ROLLUP_RETENTION_DAYS=2, MONITORING_PURGE_BATCH=7)
def test_purge_keeps_the_rollup_for_its_own_retention(make_samples: Callable[..., list]) -> None:
    make_samples("a", T0, 4 * 24, step=timedelta(hours=1))
    rollup.refresh(until=T0 + timedelta(days=4))
    HostSample.objects.all().delete()  # the samples' retention is shorter: the hours stay

    with time_machine.travel(T0 + timedelta(days=4), tick=False):
        assert purge_host_hours() == 2 * 24
        assert purge_host_hours() == 0  # idempotent
    assert HostHour.objects.earliest("hour").hour == T0 + timedelta(days=2)
    assert HostHour.objects.count() == 2 * 24
