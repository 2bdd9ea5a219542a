"""Columnar conversion gives, for every schema-valid record, the row Python's own reading gives, or refuses it.

The reference below reads one record with the standard library, as the pipeline did before it converted by
column (datetime.fromisoformat, int, str.lower, make_aware in TIME_ZONE), and refuses what the table cannot
hold (text past its varchar length or with NUL, years outside 1-9999). One deliberate difference: a value
converted to a number, time or UUID must match its schema pattern whole (JSON Schema's `$` is the end of the
text; jsonschema's Python `re.search` also lets "277\\n" through). No database: pure functions.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import orjson
import pytest
from django.db import models
from django.utils import timezone
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from eventlogs.models import TABLES
from eventlogs.services import records
from eventlogs.services.prepare import prepare_batch

from .conftest import START, generate

RECEIVED = datetime(2024, 3, 24, 12, 0, tzinfo=UTC)
ZONES = ["Z", "+00:00", "+09:00", "-0130", "+2359", "-23:59", "+0000"]


def pattern(kind: str, path: str) -> str:
    node = records.validator(kind).schema
    for key in path.split("."):
        node = node["properties"][key]
    return str(node["pattern"])


def strict(kind: str, path: str, value: str) -> str:
    if re.fullmatch(pattern(kind, path), value) is None:
        raise ValueError(f"{path}: {value!r}")
    return value


def seconds(clock: str) -> int:
    minutes, secs = clock.split(":")
    return int(minutes) * 60 + int(secs)


def instant(kind: str, path: str, text: str) -> datetime:
    """ISO 8601's reading: an offset's minutes are 00-59 (Python's fromisoformat takes "-0060" as -01:00)."""
    offset = re.search(r"[+-][0-9]{2}:?([0-9]{2})$", strict(kind, path, text))
    if offset and int(offset.group(1)) >= 60:
        raise ValueError(f"{path}: offset minutes in {text!r}")
    return datetime.fromisoformat(text).astimezone(UTC)


def optional_int(kind: str, record: dict[str, Any], key: str) -> int | None:
    return int(strict(kind, key, record[key])) if key in record else None


def lol(r: dict[str, Any]) -> dict[str, Any]:
    ts, ingame = instant("lol", "datetime", r["datetime"]), seconds(strict("lol", "ingametime", r["ingametime"]))
    x, y = optional_int("lol", r, "x"), optional_int("lol", r, "y")
    return {
        "event_id": str(uuid.UUID(strict("lol", "id", r["id"]))), "ts": ts, "account": r["account"],
        "method": r["method"], "ingametime": r["ingametime"], "ingame_seconds": ingame,
        "game_start": ts.replace(microsecond=0) - timedelta(seconds=ingame + 1), "ip": r["ip"], "x": x, "y": y,
        "x_plus_y": None if x is None or y is None else x + y,
        "death_count": int(strict("lol", "deathCount", r["deathCount"])), "inputkey": r["inputkey"],
        "champion": r["champion"].lower(), "status": int(r["status"]),
    }  # fmt: skip


def hotel(r: dict[str, Any]) -> dict[str, Any]:
    method = r["method"]
    place = re.fullmatch(r"/(buy/)?places/([0-9]+)", method)
    menu = re.fullmatch(r"/(?:sub-home/)?([a-z]+)", method) if method.startswith(("/sub-home/", "/flights",
                                                                                  "/leisure")) else None  # fmt: skip
    return {
        "event_id": str(uuid.UUID(strict("hotel", "id", r["id"]))), "ts": instant("hotel", "datetime", r["datetime"]),
        "account": r["account"], "method": method, "ip": r["ip"], "status": int(r["status"]), "gender": r["gender"],
        "age": r["age"], "buy_num": int(place.group(2)) if place and place.group(1) else 0,
        "click_num": int(place.group(2)) if place and not place.group(1) else 0,
        "category_subhome": menu.group(1) if menu else None,
    }  # fmt: skip


def raid(r: dict[str, Any]) -> dict[str, Any]:
    start = timezone.make_aware(datetime.fromisoformat(strict("raid", "startTime", r["startTime"])),
                                timezone.get_default_timezone()).astimezone(UTC)  # fmt: skip
    elapsed = seconds(strict("raid", "gametime", r["gametime"]))
    boss, user = r["Boss"], r["User"]
    return {
        "event_id": str(records.canonical_id(r)), "ts": start + timedelta(seconds=elapsed), "account": user["account"],
        "session_id": str(uuid.UUID(strict("raid", "sessionID", r["sessionID"]))), "start_time": start,
        "gametime": r["gametime"], "gametime_seconds": elapsed, "success": r["success"] == "1",
        "boss_name": boss["name"], "boss_difficulty": int(strict("raid", "Boss.difficulty", boss["difficulty"])),
        "boss_end_time": int(strict("raid", "Boss.endTime", boss["endTime"])), "user_ip": user["ip"],
        "user_class": user["class"], "method": r["method"], "x": optional_int("raid", r, "x"),
        "y": optional_int("raid", r, "y"), "inputkey": r["inputkey"], "status": int(r["status"]),
    }  # fmt: skip


def ad(r: dict[str, Any]) -> dict[str, Any]:
    a, u = r["Ad"], r["User"]
    return {
        "event_id": str(records.canonical_id(r)), "ts": RECEIVED, "account": u["account"],
        "ad_id": str(uuid.UUID(strict("ad", "Ad.ad_id", a["ad_id"]))), "ad_name": a["ad_name"], "ad_genre": a["genre"],
        "ad_start_time": date.fromisoformat(strict("ad", "Ad.start_time", a["start_time"])),
        "ad_end_time": date.fromisoformat(strict("ad", "Ad.end_time", a["end_time"])),
        "ad_click_count": int(strict("ad", "Ad.click_count", a["click_count"])),
        "ad_viewing_time": int(strict("ad", "Ad.viewing_time", a["viewing_time"])), "ad_explain": a["ad_explain"],
        "user_view": u["view"] == "true", "user_click": u["click"] == "true", "user_gender": u["gender"],
        "user_age": int(strict("ad", "User.age", u["age"])),
        "user_total_time": int(strict("ad", "User.total_time", u["total_time"])),
    }  # fmt: skip


READ: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"lol": lol, "hotel": hotel, "raid": raid, "ad": ad}


def reference(kind: str, record: dict[str, Any]) -> dict[str, Any] | None:
    """The row, or None when the record cannot be stored."""
    try:
        row = READ[kind](record)
    except (ValueError, OverflowError):
        return None
    model = TABLES[kind]
    for name, value in row.items():
        field = model._meta.get_field(name)
        if isinstance(value, str) and ("\x00" in value or (
                isinstance(field, models.CharField) and len(value) > (field.max_length or len(value)))):  # fmt: skip
            return None
    return row


@st.composite
def iso(draw: st.DrawFn, zone: bool = True) -> str:
    """A well-formed ISO time: any instant, 0-6 fraction digits, a zone as producers write them."""
    moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
    if digits := draw(st.integers(0, 6)):
        text += "." + f"{moment.microsecond:06d}"[:digits]
    return text + (draw(st.sampled_from(ZONES)) if zone else "")


def leaf(kind: str, path: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Schema-valid values of one field, edge cases included: any text within the length limits (NUL,
    characters whose lower case is longer), pattern-shaped text (impossible dates, a final newline)."""
    node = records.validator(kind).schema
    for key in path:
        node = node["properties"][key]
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "pattern" not in node:
        return st.text(min_size=node.get("minLength", 0), max_size=node.get("maxLength", 40)) | st.text(
            "İAa\x00ß", min_size=node.get("minLength", 0), max_size=node.get("maxLength", 40))  # fmt: skip
    options = [st.from_regex(node["pattern"], fullmatch=True), st.from_regex(node["pattern"])]
    if "T[0-9]{2}" in node["pattern"]:
        options.append(iso(zone="Z|" in node["pattern"]))
    if node["pattern"].startswith("^[0-9]{4}-[0-9]{2}-[0-9]{2}$"):
        options.append(st.dates().map(lambda day: f"{day.year:04d}-{day:%m-%d}"))
    return st.one_of(options)


@cache
def samples(kind: str) -> list[dict[str, Any]]:
    return [event.record for event in generate(kind, duration=120)[:30]]


@st.composite
def valid_records(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    record = copy.deepcopy(draw(st.sampled_from(samples(kind))))
    for key, value in list(record.items()):
        places: list[tuple[tuple[str, ...], dict[str, Any]]] = (
            [((key, inner), value) for inner in value] if isinstance(value, dict) else [((key,), record)]
        )
        for path, parent in places:
            if draw(st.integers(0, 3)) == 0:  # a quarter of the fields get an edge value
                parent[path[-1]] = draw(leaf(kind, path))
    return record


@pytest.mark.parametrize("kind", sorted(TABLES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_rows_match_the_python_reading(kind: str, data: st.DataObject) -> None:
    batch = data.draw(st.lists(valid_records(kind), min_size=1, max_size=10))
    assume(all(records.validator(kind).is_valid(record) for record in batch))
    prepared = prepare_batch(kind, [orjson.dumps(record) for record in batch], RECEIVED, 64 * 1024)
    expected = {n: reference(kind, record) for n, record in enumerate(batch)}
    assert {line for line, failure in prepared.failures if failure.reason == "conversion"} == {
        n for n, row in expected.items() if row is None
    }
    assert all(failure.reason == "conversion" for _, failure in prepared.failures)
    kept = {row["event_id"]: row for row in expected.values() if row is not None}  # the later record of an id wins
    assert {row["event_id"]: row for row in prepared.rows.to_pylist()} == kept


def test_generated_batches_convert_whole() -> None:
    for kind in sorted(TABLES):
        lines = [orjson.dumps(record) for record in samples(kind)]
        prepared = prepare_batch(kind, lines, START, 64 * 1024)
        assert not prepared.failures
        assert prepared.rows.num_rows + prepared.duplicates == len(lines)
