"""What each index of the lol table costs the enrichment's upsert of a 1,000-row batch.

The same prepared lol batches are staged (COPY) and upserted (`INSERT … SELECT … ON CONFLICT`, asynchronous
commit, as enrichment does) into copies of eventlogs_lolevent that differ only in their indexes: all of them,
each one left out, the primary key alone, and all of them plus the batch foreign key's check the table had
before. Copies take batches in a shuffled round-robin, so the machine's load falls on each alike.
Prints one JSON line: ms per batch per variant. Database pw_eventlogs_bench (recreated); BENCH_BATCHES (40).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lib.eventlogs_setup import cleanup, lol_records, machine, prepare

BATCH = 1000
BATCHES = int(os.environ.get("BENCH_BATCHES", "40"))
INDEXES = {
    "primary key": "ALTER TABLE {t} ADD PRIMARY KEY (event_id)",
    "(account, ts)": "CREATE INDEX ON {t} (account, ts)",
    "(ts)": "CREATE INDEX ON {t} (ts)",
    "getItem partial": "CREATE INDEX ON {t} (account, ts) WHERE method = '/getItem'",
    "batch_id": "CREATE INDEX ON {t} (batch_id)",
}
CHECK = "ALTER TABLE {t} ADD FOREIGN KEY (batch_id) REFERENCES eventlogs_batch (id) DEFERRABLE INITIALLY DEFERRED"


def variants() -> dict[str, list[str]]:
    every = list(INDEXES.values())
    found = {"all five": every, "primary key only": every[:1], "all five + batch FK check": [*every, CHECK]}
    found.update({f"without {name}": [ddl for ddl in every if ddl != INDEXES[name]] for name in list(INDEXES)[1:]})
    return found


def main() -> None:
    env = prepare("indexes")
    try:
        import orjson
        from django.db import connection, transaction

        from eventlogs.models import Batch
        from eventlogs.services.enrichment import _csv
        from eventlogs.services.prepare import prepare_batch

        now = datetime.now(UTC)
        records = lol_records(BATCH * BATCHES, seed=5)
        batches = [
            prepare_batch("lol", [orjson.dumps(r) for r in records[b : b + BATCH]], now, 1 << 16).rows
            for b in range(0, len(records), BATCH)
        ]
        batch = Batch.objects.create(kind="lol", received_at=now, offset=0, length=0, records=0)
        columns = ", ".join(batches[0].column_names)
        updates = ", ".join(f"{c} = excluded.{c}" for c in batches[0].column_names if c != "event_id")
        tables = {name: f"bench_indexes_{n}" for n, name in enumerate(variants())}
        with connection.cursor() as cursor:
            for name, ddl in variants().items():
                cursor.execute(f"CREATE TABLE {tables[name]} (LIKE eventlogs_lolevent INCLUDING DEFAULTS)")
                for statement in ddl:
                    cursor.execute(statement.format(t=tables[name]))
            cursor.execute(f"CREATE TEMPORARY TABLE stage AS SELECT {columns} FROM eventlogs_lolevent WHERE false")
        spent = dict.fromkeys(tables, 0.0)
        order = list(tables)
        for rows in batches:
            random.shuffle(order)
            for name in order:
                began = time.perf_counter()
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit = off; SET LOCAL TimeZone = 'UTC'; TRUNCATE stage")
                    cursor.copy_expert(f"COPY stage ({columns}) FROM STDIN WITH (FORMAT csv)", _csv(rows))
                    cursor.execute(
                        f"INSERT INTO {tables[name]} ({columns}, batch_id, received_at, buy_item) "
                        f"SELECT {columns}, %s, now(), 0 FROM stage ON CONFLICT (event_id) DO UPDATE SET {updates}",
                        [batch.pk],
                    )
                spent[name] += time.perf_counter() - began
        print(json.dumps({
            "bench": "eventlogs_indexes", "date": datetime.now(UTC).isoformat(timespec="seconds"), **machine(),
            "batches": len(batches), "batch": BATCH,
            "ms_per_batch": {name: round(seconds / len(batches) * 1000, 2) for name, seconds in spent.items()},
        }))  # fmt: skip
    finally:
        cleanup(env)


if __name__ == "__main__":
    main()
