"""The columnar pre-check passes exactly the records jsonschema accepts, on generated and fuzzed records.

Records are checked in batches, so one odd value (an int, a null, a nested object) sits among good ones as
it does in a real batch. No database: pure functions.
"""

from __future__ import annotations

import copy
import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlogs.models import TABLES
from eventlogs.services import precheck, records
from eventlogs.services.columns import Columns
from eventlogs.services.prepare import prepare_batch

from .conftest import START, generate

KINDS = sorted(TABLES)
EXAMPLES = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
)
JSON = st.recursive(
    SCALARS | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@cache
def samples(kind: str) -> list[dict[str, Any]]:
    return [event.record for event in generate(kind, duration=120)[:40]]


def schema_of(kind: str, path: tuple[str, ...]) -> dict[str, Any]:
    node = records.validator(kind).schema
    for key in path:
        node = node.get("properties", {}).get(key, {})
    return node


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values shaped by the schema: valid ones, near misses (Python's re.search also finds a match inside a
    longer text, or before a final newline) and any text."""
    if schema.get("type") == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {key: from_schema(sub) for key, sub in properties.items() if key in required},
            optional={key: from_schema(sub) for key, sub in properties.items() if key not in required},
        )
    options = [st.text(max_size=(schema.get("maxLength") or 40) + 2)]
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    if "pattern" in schema:
        options += [st.from_regex(schema["pattern"], fullmatch=True), st.from_regex(schema["pattern"])]
    return st.one_of(options)


def paths(record: dict[str, Any]) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for key, value in record.items():
        found.append((key,))
        if isinstance(value, dict):
            found += [(key, inner) for inner in value]
    return found


@st.composite
def fuzzed(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A generated record with up to three mutations: a key removed, nulled, given another JSON type, text
    around its length limits, schema-shaped text, a trailing newline, or an extra key."""
    record = copy.deepcopy(draw(st.sampled_from(samples(kind))))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(paths(record) or [("id",)]))
        parent = record if len(path) == 1 else record.get(path[0])
        if not isinstance(parent, dict):
            continue
        key, schema = path[-1], schema_of(kind, path)
        mutation = draw(st.sampled_from(["delete", "null", "json", "limits", "schema", "newline", "extra"]))
        if mutation == "delete":
            parent.pop(key, None)
        elif mutation == "null":
            parent[key] = None
        elif mutation == "json":
            parent[key] = draw(JSON)
        elif mutation == "limits":
            limit = schema.get("maxLength", 1)
            parent[key] = draw(st.text(min_size=max(0, limit - 1), max_size=limit + 1))
        elif mutation == "schema":
            parent[key] = draw(from_schema(schema))
        elif mutation == "newline" and isinstance(parent.get(key), str):
            parent[key] += "\n"
        elif mutation == "extra":
            parent[draw(st.text(max_size=6))] = draw(JSON)
    return record


def agrees(kind: str, batch: list[dict[str, Any]]) -> None:
    check = records.validator(kind)
    assert list(precheck.passes(kind, Columns(batch))) == [check.is_valid(record) for record in batch]


@pytest.mark.parametrize("kind", KINDS)
def test_shipped_schemas_compile(kind: str) -> None:
    assert precheck.rules(kind) is not None  # else every record would go through jsonschema (~65 µs each)


@pytest.mark.parametrize("kind", KINDS)
def test_generated_records_pass(kind: str) -> None:
    batch = [event.record for event in generate(kind, duration=300)[:2000]]
    assert precheck.passes(kind, Columns(batch)).all()
    assert all(records.validator(kind).is_valid(record) for record in batch)


@pytest.mark.parametrize("kind", KINDS)
@EXAMPLES
@given(data=st.data())
def test_fuzzed_and_schema_shaped_records_agree_with_jsonschema(kind: str, data: st.DataObject) -> None:
    record = st.one_of(fuzzed(kind), from_schema(records.validator(kind).schema))
    agrees(kind, data.draw(st.lists(record, min_size=1, max_size=12)))


@EXAMPLES
@given(batch=st.lists(fuzzed("lol"), min_size=1, max_size=12))
def test_schema_failures_are_jsonschemas_own(batch: list[dict[str, Any]]) -> None:
    """Through the whole preparation: the schema failures are the records jsonschema rejects, with its words."""
    prepared = prepare_batch("lol", [orjson.dumps(record) for record in batch], START, 64 * 1024)
    schema = {line: failure for line, failure in prepared.failures if failure.reason == "schema"}
    assert set(schema) == {n for n, record in enumerate(batch) if not records.validator("lol").is_valid(record)}
    for line, failure in schema.items():
        with pytest.raises(records.Failure) as expected:
            records.validate("lol", batch[line])
        assert (failure.schema_path, failure.message) == (expected.value.schema_path, expected.value.message)


def test_a_schema_it_cannot_compile_leaves_every_record_to_jsonschema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = tmp_path / "schemas"
    shutil.copytree(records.SCHEMA_DIR, changed)
    schema = json.loads((changed / "lol.json").read_text())
    schema["additionalProperties"] = False
    (changed / "lol.json").write_text(json.dumps(schema))
    monkeypatch.setattr(records, "SCHEMA_DIR", changed)
    records.validator.cache_clear()
    try:
        batch = [*samples("lol")[:3], {**samples("lol")[3], "cheat": "1"}]
        assert precheck.rules("lol") is None
        assert not precheck.passes("lol", Columns(batch)).any()
        prepared = prepare_batch("lol", [orjson.dumps(record) for record in batch], START, 64 * 1024)
        assert prepared.rows.num_rows == 3
        [(line, failure)] = prepared.failures
        assert (line, failure.reason) == (3, "schema")
        assert "cheat" in failure.message
    finally:
        monkeypatch.undo()
        records.validator.cache_clear()
