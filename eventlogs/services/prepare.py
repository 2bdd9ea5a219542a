"""A batch's raw lines → its typed rows (an Arrow table, one row per event id) and its failed records.

1. parse each line (records.parse_line);
2. validate: the columnar pre-check compiled from the kind's schema passes the records jsonschema surely
   accepts; jsonschema judges the others and words the failures (precheck.py, records.validate);
3. convert the valid records by column (convert.py);
4. keep one row per event id: the later record of an id wins (an upsert cannot touch a row twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa

from . import precheck
from .columns import Columns
from .convert import convert
from .records import Failure, Reason, parse_line, validate


@dataclass
class Prepared:
    rows: pa.Table
    failures: list[tuple[int, Failure]]  # (line, why), in line order
    duplicates: int  # records whose id came again later in the batch


def prepare_batch(kind: str, lines: list[bytes], received_at: datetime, max_bytes: int) -> Prepared:
    failures: list[tuple[int, Failure]] = []
    records, at = [], []  # the parsed records and their lines
    for line, raw in enumerate(lines):
        try:
            records.append(parse_line(raw, max_bytes))
        except Failure as failure:
            failures.append((line, failure))
            continue
        at.append(line)
    columns = Columns(records)
    valid = precheck.passes(kind, columns)
    for position in np.flatnonzero(~valid):
        try:
            validate(kind, records[position])
        except Failure as failure:
            failures.append((at[position], failure))
            continue
        valid[position] = True  # the pre-check only passes what it is sure of; jsonschema accepted this one
    kept = np.flatnonzero(valid)
    rows, refused = convert(kind, columns if len(kept) == len(columns) else columns.take(kept), received_at)
    failures += [(at[kept[position]], Failure(Reason.CONVERSION, why)) for position, why in refused.items()]
    failures.sort(key=lambda failure: failure[0])
    last = {event_id: row for row, event_id in enumerate(rows["event_id"].to_pylist())}
    if len(last) < rows.num_rows:
        rows = rows.take(pa.array(sorted(last.values()), type=pa.int64()))
    return Prepared(rows, failures, len(kept) - len(refused) - len(last))
