"""KIPRIS parse + upsert throughput into PostgreSQL, the part of a harvest that is ours.

Prints one JSON line: records/s for parsing (XML -> records), for upserting new records, for the two
together (the target: >= 5,000 records/s), and for re-upserting the same records unchanged (a refresh).
Pages are real simulator responses (kipo-api, 500 rows, patents and trademarks, Korean text), generated
before timing. Database: a dedicated PostgreSQL database (BENCH_DATABASE, default pw_ingest_upsert_bench),
recreated per run.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.lib.database import recreate_database, setup_django

DATABASE = os.environ.get("BENCH_DATABASE", "pw_ingest_upsert_bench")
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
RECORDS = int(os.environ.get("BENCH_RECORDS", "30000"))
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/2")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def main() -> None:
    recreate_database(DATABASE_URL)
    setup_django(DATABASE_URL)
    from django.db import transaction

    from ingest import services
    from ingest.kipris.parsing import parse_envelope, to_record
    from ingest.models import Applicant, Organization
    from ingest.simulator import SimulatedKipris

    sim = SimulatedKipris(seed=0, organizations=3000, api_key="k")
    pages: list[tuple[str, bytes]] = []
    collected = 0
    for org in sim.organizations:
        for holder in org.applicants:
            for kind, path in (
                ("patent", "/kipo-api/kipi/patUtiModInfoSearchSevice/getAdvancedSearch"),
                ("trademark", "/kipo-api/kipi/trademarkInfoSearchService/getAdvancedSearch"),
            ):
                param = "applicant" if kind == "patent" else "applicantName"
                for page in range(1, sim.count(holder.number, kind) // 500 + 1):
                    query = {
                        "ServiceKey": ["k"],
                        param: [holder.number],
                        "numOfRows": ["500"],
                        "pageNo": [str(page)],
                    }
                    pages.append((kind, sim.answer(path, query)[1]))
                    collected += 500
            if collected >= RECORDS:
                break
        if collected >= RECORDS:
            break
    organization = Organization.objects.create(name="bench", business_number="124-81-00998")
    applicant = Applicant.objects.create(number="119981042713", name="bench", organization=organization)

    started = time.perf_counter()
    parsed = [[r for row in parse_envelope(body).rows if (r := to_record(kind, row))] for kind, body in pages]
    parse_seconds = time.perf_counter() - started
    records = sum(len(page) for page in parsed)

    def upsert_all() -> tuple[float, dict[str, int]]:
        outcomes: dict[str, int] = {}
        began = time.perf_counter()
        for page in parsed:
            with transaction.atomic():
                for (_, outcome), count in services.upsert_records(organization, applicant, page).items():
                    outcomes[outcome] = outcomes.get(outcome, 0) + count
        return time.perf_counter() - began, outcomes

    insert_seconds, first = upsert_all()
    refresh_seconds, second = upsert_all()
    print(
        json.dumps(
            {
                "bench": "ingest_upsert",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other work",
                "load_average_1m": round(os.getloadavg()[0], 1),
                "records": records,
                "pages": len(pages),
                "parse_records_per_s": round(records / parse_seconds),
                "upsert_new_records_per_s": round(records / insert_seconds),
                "parse_plus_upsert_records_per_s": round(records / (parse_seconds + insert_seconds)),
                "refresh_unchanged_records_per_s": round(records / refresh_seconds),
                "first_pass": first,
                "second_pass": second,
            }
        )
    )


if __name__ == "__main__":
    main()
