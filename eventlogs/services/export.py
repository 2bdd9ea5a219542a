"""Datasets: Parquet (pyarrow) with an explicit schema, partitioned the way the warehouse partitioned.

analysis: the enriched columns of the kind's table. training: the detection app's model features
(`eventlogs.detection.training.training_frame`: one row per account and scored minute, labelled from a
ground-truth file when given) when that app is installed, else the enriched columns a model is trained on
(the analysis set without the pipeline's bookkeeping columns).
Partitions (hive style, `name=value/`): raid by start date, session and account; the others by date
(training features: by the window's date).
Readable by pyarrow, pandas, DuckDB (`read_parquet('DIR/**/*.parquet', hive_partitioning=true)`) and Spark.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
from django.db import models

from ..models import TABLES
from .queries import events

logger = logging.getLogger(__name__)

# Rows per Arrow record batch read from the database: ~10 MB of lol rows.
CHUNK_ROWS = 50_000
BOOKKEEPING = {"batch", "received_at"}
PARTITIONS: dict[str, list[tuple[str, pa.DataType]]] = {
    "raid": [("start_date", pa.date32()), ("session_id", pa.string()), ("account", pa.string())],
    "lol": [("date", pa.date32())],
    "hotel": [("date", pa.date32())],
    "ad": [("date", pa.date32())],
}
FEATURES_MODULE = "eventlogs.detection.training"
FEATURES_FUNCTION = "training_frame"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# Most specific class first (SmallIntegerField and BigIntegerField are IntegerFields; DateTimeField a DateField).
ARROW_TYPES: list[tuple[type[models.Field], pa.DataType]] = [
    (models.ForeignKey, pa.string()),
    (models.UUIDField, pa.string()),
    (models.DateTimeField, pa.timestamp("us", tz="UTC")),
    (models.DateField, pa.date32()),
    (models.BooleanField, pa.bool_()),
    (models.SmallIntegerField, pa.int16()),
    (models.BigIntegerField, pa.int64()),
    (models.IntegerField, pa.int32()),
]


def _arrow_type(field: models.Field) -> pa.DataType:
    return next((arrow for django_type, arrow in ARROW_TYPES if isinstance(field, django_type)), pa.string())


def columns(kind: str, purpose: str) -> list[models.Field]:
    fields = list(TABLES[kind]._meta.concrete_fields)
    return [f for f in fields if purpose == "analysis" or f.name not in BOOKKEEPING]


def schema(kind: str, purpose: str) -> pa.Schema:
    """The declared schema of a dataset: the table's columns plus the partition columns."""
    declared = [pa.field(f.attname, _arrow_type(f), nullable=f.null) for f in columns(kind, purpose)]
    names = {f.name for f in declared}
    declared += [pa.field(name, kind_type, nullable=False) for name, kind_type in PARTITIONS[kind] if name not in names]
    return pa.schema(declared)


def _partition_values(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    if kind == "raid":
        return {"start_date": row["start_time"].astimezone(UTC).date()}
    return {"date": row["ts"].astimezone(UTC).date()}


def _batches(kind: str, purpose: str, query: dict[str, Any], target: pa.Schema) -> Iterator[pa.RecordBatch]:
    fields = columns(kind, purpose)
    names = [f.attname for f in fields]
    uuids = {f.attname for f in fields if isinstance(f, models.UUIDField | models.ForeignKey)}
    chunk: list[dict[str, Any]] = []
    for values in events(kind, query).values_list(*names).iterator(chunk_size=CHUNK_ROWS):
        row = dict(zip(names, values, strict=True))
        for name in uuids:
            if row[name] is not None:
                row[name] = str(row[name])
        row.update(_partition_values(kind, row))
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            yield pa.RecordBatch.from_pylist(chunk, schema=target)
            chunk = []
    if chunk:
        yield pa.RecordBatch.from_pylist(chunk, schema=target)


def _feature_function() -> Callable[..., Any] | None:
    try:
        module = importlib.import_module(FEATURES_MODULE)
    except ImportError:
        return None
    return getattr(module, FEATURES_FUNCTION, None)


@dataclass(frozen=True)
class ExportResult:
    rows: int
    files: list[str]
    schema: pa.Schema
    features: bool  # True: the detection app's feature frame; False: enriched columns


def _feature_table(
    features: Callable[..., Any], kind: str, start: datetime, end: datetime, truth: Path | None
) -> pa.Table:
    """The detection app's feature frame with a `date` partition column; its columns are that app's contract."""
    frame = features(kind, start, end, truth=truth)
    frame["date"] = frame["window"].dt.date if len(frame) else pd.Series([], dtype="object")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.set_column(table.schema.get_field_index("date"), "date", table["date"].cast(pa.date32()))


def export(
    kind: str,
    purpose: str,
    start: datetime | None,
    end: datetime | None,
    output: Path,
    *,
    truth: Path | None = None,
) -> ExportResult:
    query = {"start": start, "end": end}
    features = _feature_function() if purpose == "training" else None
    if features is not None:
        data: Any = _feature_table(features, kind, start or EPOCH, end or datetime.now(UTC), truth)
        target = data.schema
        partitioning = ds.partitioning(pa.schema([target.field("date")]), flavor="hive")
        chunks: Iterator[pa.RecordBatch] = iter(data.to_batches())
    else:
        target = schema(kind, purpose)
        chunks = _batches(kind, purpose, query, target)
        partitioning = ds.partitioning(pa.schema([(name, t) for name, t in PARTITIONS[kind]]), flavor="hive")
    written: list[str] = []
    run = uuid.uuid4().hex[:8]
    rows = 0
    # Chunk by chunk from this thread: pyarrow would pull a generator from its own threads, and a database
    # connection belongs to the thread that opened it.
    for number, chunk in enumerate(chunks):
        rows += chunk.num_rows
        ds.write_dataset(
            pa.Table.from_batches([chunk], schema=target),
            output,
            format="parquet",
            partitioning=partitioning,
            basename_template=f"part-{run}-{number}-{{i}}.parquet",
            existing_data_behavior="overwrite_or_ignore",
            file_visitor=lambda file: written.append(file.path),
        )
    return ExportResult(rows=rows, files=sorted(written), schema=target, features=features is not None)
