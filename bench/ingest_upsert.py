"""KIPRIS parse + upsert throughput into PostgreSQL, the part of a harvest that is ours.

Prints one JSON line: records/s for parsing (XML -> records), for upserting new records, for the two
together (the target: >= 5,000 records/s), and for re-upserting the same records unchanged (a refresh).
Pages are real simulator responses (kipo-api, 500 rows, patents and trademarks, Korean text), generated
before timing. Database: a dedicated PostgreSQL database (pw_ingest_upsert_bench), recreated per run.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg2

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE = "pw_ingest_upsert_bench"
RECORDS = int(os.environ.get("BENCH_RECORDS", "30000"))
sys.path.insert(0, str(BASE_DIR))
os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/2")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def recreate_database() -> None:
    connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        cursor.execute(f"CREATE DATABASE {DATABASE}")
    connection.close()


def main() -> None:
    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from ingest import services
    from ingest.kipris.parsing import parse_envelope, to_record
    from ingest.models import Applicant, Organization
    from ingest.simulator import SimulatedKipris

    call_command("migrate", verbosity=0)
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
