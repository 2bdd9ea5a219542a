"""Typed columns from a batch's schema-valid records: strings → ints, times, UUIDs, game clocks → seconds, and
the derived columns, computed with Arrow over whole columns (the per-record converters cost ~13 µs a record).

A value the schema lets through that its column cannot hold (30 February, year 0, a champion that lower-cases
past 32 characters, a NUL character PostgreSQL text refuses, "277\\n": jsonschema's `pattern` is Python's
`re.search`, whose `$` also matches before a final newline) makes its record a `conversion` failure, never a
failed batch: the batch is converted whole and, when a column refuses, split in halves until each record
at fault is alone (k bad records cost about 2k·log2(n) small conversions).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.db import models
from django.utils import timezone

from ..models import TABLES
from .columns import Columns
from .records import canonical_id

TIMESTAMP = pa.timestamp("us", tz="UTC")
UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"  # RE2: $ is the end of the text
PLACE = r"^/(?P<buy>buy/)?places/(?P<n>[0-9]+)$"  # /places/n (a click) and /buy/places/n (a booking)
TOP_MENU = r"^/(?:sub-home/(?P<sub>[a-z]+)|(?P<top>flights|leisure))$"
# What Python (and Django reading the rows back) can hold; PostgreSQL's range is wider.
FIRST_DAY, LAST_DAY = date(1, 1, 1), date(9999, 12, 31)
FIRST_INSTANT, LAST_INSTANT = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


class ConversionError(ValueError):
    """A record's value its column cannot hold."""


def _first(mask: pa.Array | pa.ChunkedArray) -> int | None:
    found = np.flatnonzero(np.asarray(pc.fill_null(mask, False)))
    return int(found[0]) if len(found) else None


def _refuse(mask: pa.Array | pa.ChunkedArray, values: pa.Array | pa.ChunkedArray, name: str, why: str) -> None:
    if (row := _first(mask)) is not None:
        shown = values.slice(row, 1).cast(pa.string())[0].as_py()  # Arrow's text: Python cannot hold year 0
        raise ConversionError(f"{name}: {shown!r} {why}")


def _cast(values: pa.Array, target: pa.DataType, name: str) -> pa.Array:
    try:
        return pc.cast(values, target)
    except pa.ArrowInvalid as exc:
        raise ConversionError(f"{name}: {exc}") from None


def _int(c: Columns, name: str, target: pa.DataType | None = None) -> pa.Array:
    return _cast(c.text(name), target or pa.int32(), name)


def _uuid(c: Columns, name: str) -> pa.Array:
    """The canonical (lower-case) text form, which PostgreSQL reads as a uuid."""
    text = pc.utf8_lower(c.text(name))
    _refuse(pc.invert(pc.match_substring_regex(text, UUID)), text, name, "is not a UUID")
    return text


def _instant(c: Columns, name: str) -> pa.Array:
    """An ISO 8601 time with a zone (Z, ±hh:mm, ±hhmm) → UTC; the same instants as datetime.fromisoformat."""
    return _cast(c.text(name), TIMESTAMP, name)


def _clock(c: Columns, name: str) -> pa.Array:
    """Game time "m:s" → seconds."""
    try:
        parts = pc.split_pattern(c.text(name), ":", max_splits=1)
        minutes, seconds = pc.list_element(parts, 0), pc.list_element(parts, 1)
    except pa.ArrowIndexError:
        raise ConversionError(f"{name}: a game time is m:s") from None
    return pc.add_checked(pc.multiply_checked(_cast(minutes, pa.int32(), name), 60), _cast(seconds, pa.int32(), name))


def _each_distinct(values: pa.Array, function: Callable[[str], Any], target: pa.DataType, name: str) -> pa.Array:
    """A Python function applied once per distinct value (a batch repeats a few champions, raid start times)."""
    distinct = pc.unique(values)
    try:
        mapped = [None if value is None else function(value) for value in distinct.to_pylist()]
    except (ValueError, OverflowError) as exc:
        raise ConversionError(f"{name}: {exc}") from None
    return pa.array(mapped, type=target).take(pc.index_in(values, distinct))


def _local(text: str) -> datetime:
    """A time sent without a zone (raid startTime) is in TIME_ZONE, where the game servers run (Django's
    make_aware, as everywhere else in pipewatch)."""
    return timezone.make_aware(datetime.fromisoformat(text), timezone.get_default_timezone())


def _plus_seconds(moments: pa.Array, seconds: pa.Array) -> pa.Array:
    return pc.add_checked(moments, pc.cast(pc.multiply_checked(pc.cast(seconds, pa.int64()), 1_000_000),
                                           pa.duration("us")))  # fmt: skip


def _lol(c: Columns, received_at: datetime) -> dict[str, pa.Array]:
    ts = _instant(c, "datetime")
    ingame = _clock(c, "ingametime")
    x, y = _int(c, "x"), _int(c, "y")
    return {
        "event_id": _uuid(c, "id"), "ts": ts, "account": c.text("account"), "method": c.text("method"),
        "ingametime": c.text("ingametime"), "ingame_seconds": ingame,
        # A lower bound of the game's start (buy_item counts the purchases since then).
        "game_start": _plus_seconds(pc.floor_temporal(ts, unit="second"), pc.negate_checked(pc.add(ingame, 1))),
        "ip": c.text("ip"), "x": x, "y": y, "x_plus_y": pc.add_checked(x, y), "death_count": _int(c, "deathCount"),
        "inputkey": c.text("inputkey"),
        "champion": _each_distinct(c.text("champion"), str.lower, pa.string(), "champion"),
        "status": _int(c, "status", pa.int16()),
    }  # fmt: skip


def _hotel(c: Columns, received_at: datetime) -> dict[str, pa.Array]:
    method = c.text("method")
    place = pc.extract_regex(method, PLACE)  # null where the method is not a place
    number = pc.fill_null(_cast(pc.struct_field(place, "n"), pa.int32(), "method"), 0)
    booking = pc.fill_null(pc.equal(pc.struct_field(place, "buy"), "buy/"), False)
    menu = pc.extract_regex(method, TOP_MENU)  # the top-menu item: a sub-home page, flights or leisure
    return {
        "event_id": _uuid(c, "id"), "ts": _instant(c, "datetime"), "account": c.text("account"), "method": method,
        "ip": c.text("ip"), "status": _int(c, "status", pa.int16()), "gender": c.text("gender"), "age": c.text("age"),
        "buy_num": pc.if_else(booking, number, 0), "click_num": pc.if_else(booking, 0, number),
        "category_subhome": pc.coalesce(_group(menu, "sub"), _group(menu, "top")),
    }  # fmt: skip


def _group(match: pa.StructArray, name: str) -> pa.Array:
    """A regex group of pc.extract_regex; null where the pattern or the group did not match."""
    text = pc.struct_field(match, name)
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _ids(c: Columns) -> pa.Array:
    """raid and ad records carry no id: theirs is a UUID5 of the canonical record."""
    return pa.array([str(canonical_id(row)) for row in c.rows], type=pa.string())


def _raid(c: Columns, received_at: datetime) -> dict[str, pa.Array]:
    start = _each_distinct(c.text("startTime"), _local, TIMESTAMP, "startTime")
    elapsed = _clock(c, "gametime")
    return {
        "event_id": _ids(c), "ts": _plus_seconds(start, elapsed), "account": c.text("User.account"),
        "session_id": _uuid(c, "sessionID"), "start_time": start, "gametime": c.text("gametime"),
        "gametime_seconds": elapsed, "success": pc.equal(c.text("success"), "1"), "boss_name": c.text("Boss.name"),
        "boss_difficulty": _int(c, "Boss.difficulty"), "boss_end_time": _int(c, "Boss.endTime"),
        "user_ip": c.text("User.ip"), "user_class": c.text("User.class"), "method": c.text("method"),
        "x": _int(c, "x"), "y": _int(c, "y"), "inputkey": c.text("inputkey"), "status": _int(c, "status", pa.int16()),
    }  # fmt: skip


def _ad(c: Columns, received_at: datetime) -> dict[str, pa.Array]:
    return {
        "event_id": _ids(c), "ts": pa.array([received_at] * len(c), type=TIMESTAMP), "account": c.text("User.account"),
        "ad_id": _uuid(c, "Ad.ad_id"), "ad_name": c.text("Ad.ad_name"), "ad_genre": c.text("Ad.genre"),
        "ad_start_time": _cast(c.text("Ad.start_time"), pa.date32(), "Ad.start_time"),
        "ad_end_time": _cast(c.text("Ad.end_time"), pa.date32(), "Ad.end_time"),
        "ad_click_count": _int(c, "Ad.click_count"), "ad_viewing_time": _int(c, "Ad.viewing_time"),
        "ad_explain": c.text("Ad.ad_explain"), "user_view": pc.equal(c.text("User.view"), "true"),
        "user_click": pc.equal(c.text("User.click"), "true"), "user_gender": c.text("User.gender"),
        "user_age": _int(c, "User.age"), "user_total_time": _int(c, "User.total_time"),
    }  # fmt: skip


CONVERTERS: dict[str, Callable[[Columns, datetime], dict[str, pa.Array]]] = {
    "lol": _lol, "hotel": _hotel, "raid": _raid, "ad": _ad,
}  # fmt: skip


def _check(kind: str, table: pa.Table) -> None:
    """Refuse what the table's columns cannot hold (the model says what): NULL in a NOT NULL column, text past
    a varchar's length or holding NUL, times outside year 1-9999."""
    fields = {field.name: field for field in TABLES[kind]._meta.concrete_fields}
    for name in table.column_names:
        field, column = fields[name], table[name]
        if not field.null and column.null_count:
            raise ConversionError(f"{name} is missing")
        if pa.types.is_string(column.type):
            if isinstance(field, models.CharField) and field.max_length is not None:
                _refuse(pc.greater(pc.utf8_length(column), field.max_length), column, name,
                        f"is longer than {field.max_length} characters")  # fmt: skip
            _refuse(pc.match_substring(column, "\x00"), column, name, "holds a NUL character")
        elif pa.types.is_timestamp(column.type):
            outside = pc.or_(pc.less(column, pa.scalar(FIRST_INSTANT, TIMESTAMP)),
                             pc.greater(column, pa.scalar(LAST_INSTANT, TIMESTAMP)))  # fmt: skip
            _refuse(outside, column, name, "is outside years 1-9999")
        elif pa.types.is_date(column.type):
            outside = pc.or_(pc.less(column, pa.scalar(FIRST_DAY)), pc.greater(column, pa.scalar(LAST_DAY)))
            _refuse(outside, column, name, "is outside years 1-9999")


def _table(kind: str, columns: Columns, received_at: datetime) -> pa.Table:
    table = pa.table(CONVERTERS[kind](columns, received_at))
    _check(kind, table)
    return table


def convert(kind: str, columns: Columns, received_at: datetime) -> tuple[pa.Table, dict[int, str]]:
    """The typed rows of the records that convert (in their order), and why each other one does not (by its
    position in `columns`)."""
    parts: list[pa.Table] = []
    failures: dict[int, str] = {}

    def run(positions: np.ndarray) -> None:
        part = columns if len(positions) == len(columns) else columns.take(positions)
        try:
            parts.append(_table(kind, part, received_at))
        except (ConversionError, ValueError, OverflowError, IndexError) as exc:  # Arrow's: ArrowInvalid, ...IndexError
            if len(positions) == 1:
                failures[int(positions[0])] = f"cannot convert {exc}"
                return
            half = len(positions) // 2
            run(positions[:half])
            run(positions[half:])

    run(np.arange(len(columns)))
    if not parts:
        return _table(kind, Columns([]), received_at), failures
    return pa.concat_tables(parts), failures
