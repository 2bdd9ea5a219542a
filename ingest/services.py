"""Harvesting logic: resolve applicant numbers, page through the searches, upsert rights, track runs.

Tasks (ingest/tasks.py) only call these. Every step is idempotent: applicants and rights are upserted on
natural keys and a checkpoint advances in the same transaction as the rows of its page, so a task run
twice (acks_late redelivery after a crash) neither duplicates rows nor double-counts them.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import metrics
from .kipris.client import Family, KiprisClient
from .kipris.errors import BudgetExhaustedError, CircuitOpenError, KiprisError
from .kipris.parsing import Record
from .models import Applicant, HarvestCheckpoint, HarvestRun, IPRight, Organization, RunStatus, SearchKind

logger = logging.getLogger(__name__)

ALL_KINDS = [choice.value for choice in SearchKind]
TERMINAL = {RunStatus.DONE, RunStatus.FAILED, RunStatus.PAUSED}
COMPARED_FIELDS = (
    "application_date",
    "title",
    "status",
    "registration_number",
    "registration_date",
    "publication_number",
    "publication_date",
    "open_number",
    "open_date",
    "ipc_codes",
    "nice_classes",
    "vienna_codes",
    "applicant_names",
    "agent",
    "abstract",
    "image_url",
)


def validate_kinds(kinds: list[str] | None) -> list[str]:
    chosen = list(dict.fromkeys(kinds or ALL_KINDS))
    unknown = sorted(set(chosen) - set(ALL_KINDS))
    if unknown:
        raise ValueError(f"unknown kind(s) {', '.join(unknown)}: choose from {', '.join(ALL_KINDS)}")
    return chosen


def has_active_run(organization_id: int) -> bool:
    """A run still queued or running: a second one would only repeat its calls."""
    return HarvestRun.objects.filter(
        organization_id=organization_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
    ).exists()


def create_run(organization_id: int, kinds: list[str] | None = None) -> HarvestRun:
    return HarvestRun.objects.create(organization_id=organization_id, kinds=validate_kinds(kinds))


# --- applicant numbers -----------------------------------------------------------------------------


def resolve_applicants(organization: Organization, client: KiprisClient) -> list[Applicant]:
    """Look the organisation's applicant numbers up (V3, then V2) and upsert them."""
    found = client.find_applicants(organization.business_number, organization.corporate_number)
    # One upsert statement (no read-then-write: SQLite would refuse the lock upgrade under contention).
    Applicant.objects.bulk_create(
        [Applicant(number=info.number, name=info.name, organization=organization) for info in found],
        update_conflicts=True,
        unique_fields=["number"],
        update_fields=["name", "organization", "last_seen"],
    )
    for info in found:
        logger.info("organization %s: applicant number %s (%s)", organization.pk, info.number, info.name)
    Organization.objects.filter(pk=organization.pk).update(applicants_resolved_at=timezone.now())
    return list(Applicant.objects.filter(number__in=[info.number for info in found]))


def plan_run(run_id: int, client: KiprisClient | None = None) -> list[int]:
    """Resolve applicants and create one checkpoint per applicant x search; return the ids to harvest.

    Re-running it (a redelivered task) reuses the existing checkpoints and returns the unfinished ones.
    """
    run = HarvestRun.objects.select_related("organization").get(pk=run_id)
    if run.status in TERMINAL:
        return []
    client = client or KiprisClient.shared(org_type=run.organization.org_type)
    HarvestRun.objects.filter(pk=run.pk, started_at__isnull=True).update(started_at=timezone.now())
    HarvestRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    sent_before = client.requests_sent
    applicants = resolve_applicants(run.organization, client)
    HarvestRun.objects.filter(pk=run.pk).update(requests=F("requests") + client.requests_sent - sent_before)
    if not applicants:
        org = run.organization
        finish_run(
            run.pk,
            RunStatus.DONE,
            error=f"KIPRIS knows no applicant number for business number {org.business_number or '-'}"
            f" / corporate number {org.corporate_number or '-'}",
        )
        return []
    for applicant in applicants:
        for kind in run.kinds:
            HarvestCheckpoint.objects.get_or_create(
                run=run, applicant=applicant, kind=kind, defaults={"organization": run.organization}
            )
    update_queue_gauge()
    return list(run.checkpoints.exclude(status__in=TERMINAL).values_list("pk", flat=True))


# --- pages -----------------------------------------------------------------------------------------


def claim(checkpoint_id: int, token: str) -> bool:
    """Take (or renew) the checkpoint's lease; False when another live task holds it or it is finished."""
    now = timezone.now()
    return bool(
        HarvestCheckpoint.objects.filter(pk=checkpoint_id)
        .exclude(status__in=[RunStatus.DONE, RunStatus.FAILED])
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_token=token))
        .update(
            lease_token=token,
            lease_until=now + timedelta(seconds=settings.KIPRIS_CHECKPOINT_LEASE_SECONDS),
            status=RunStatus.RUNNING,
        )
    )


@dataclass
class BatchOutcome:
    done: bool
    pages: int
    claimed: bool = True


def harvest_batch(checkpoint_id: int, *, token: str, pages: int, client: KiprisClient | None = None) -> BatchOutcome:
    """Fetch up to `pages` pages of one checkpoint, committing each page with the checkpoint's advance."""
    if not claim(checkpoint_id, token):
        logger.info("checkpoint %s is finished or held by another task; nothing to do", checkpoint_id)
        return BatchOutcome(done=True, pages=0, claimed=False)
    checkpoint = HarvestCheckpoint.objects.select_related("applicant", "organization").get(pk=checkpoint_id)
    client = client or KiprisClient.shared(org_type=checkpoint.organization.org_type)
    family = Family(settings.KIPRIS_SEARCH_FAMILY)
    fetched_pages = 0
    done = False
    while fetched_pages < pages and not done:
        page = client.search_page(
            checkpoint.kind,
            checkpoint.applicant.number,
            page=checkpoint.next_page,
            fetched=checkpoint.fetched,
            family=family,
        )
        started = time.perf_counter()
        with transaction.atomic():
            # Write first: this UPDATE both checks that the checkpoint is still ours at this page and
            # locks it (PostgreSQL row lock; SQLite's write lock, taken before any read in the transaction).
            still_ours = HarvestCheckpoint.objects.filter(
                pk=checkpoint_id, lease_token=token, next_page=checkpoint.next_page
            ).update(lease_until=timezone.now() + timedelta(seconds=settings.KIPRIS_CHECKPOINT_LEASE_SECONDS))
            if not still_ours:
                # Our lease expired and another task took over: its view wins, ours is discarded.
                logger.warning("checkpoint %s taken over by another task; stopping", checkpoint_id)
                return BatchOutcome(done=True, pages=fetched_pages, claimed=False)
            # Re-read under the lock: a retried task's on_retry (note_error) may have counted an error
            # after this task started.
            checkpoint = HarvestCheckpoint.objects.select_related("applicant", "organization").get(pk=checkpoint_id)
            counts = upsert_records(checkpoint.organization, checkpoint.applicant, page.records)
            page_stats: dict[str, Any] = {"skipped_rows": page.skipped}
            for (kind, outcome), number in counts.items():
                page_stats.setdefault(kind, {})[outcome] = number
            checkpoint.stats = merge_stats(checkpoint.stats or {}, page_stats)
            checkpoint.requests += 1
            checkpoint.next_page += 1
            checkpoint.fetched += page.rows
            checkpoint.total = page.total
            # Stop when everything announced is fetched, or on a short page (KIPRIS trims silently).
            done = (page.total is not None and checkpoint.fetched >= page.total) or page.rows < page.page_size
            checkpoint.status = RunStatus.DONE if done else RunStatus.RUNNING
            checkpoint.error = ""
            checkpoint.lease_until = timezone.now() + timedelta(seconds=settings.KIPRIS_CHECKPOINT_LEASE_SECONDS)
            if done:
                checkpoint.lease_token, checkpoint.lease_until = "", None
            checkpoint.save(
                update_fields=[
                    "stats",
                    "requests",
                    "next_page",
                    "fetched",
                    "total",
                    "status",
                    "error",
                    "lease_token",
                    "lease_until",
                    "updated_at",
                ]
            )
        metrics.WORKER_PROCESS_SECONDS.observe(time.perf_counter() - started)
        fetched_pages += 1
    if done:
        complete_run_if_finished(checkpoint.run_id)
        update_queue_gauge()
    else:
        # Hand the lease back: the task this one queues next has a new id and must be able to claim it.
        HarvestCheckpoint.objects.filter(pk=checkpoint_id, lease_token=token).update(lease_token="", lease_until=None)
    return BatchOutcome(done=done, pages=fetched_pages)


def merge_stats(total: dict[str, Any], counts: dict[str, Any]) -> dict[str, Any]:
    """Add per-kind outcome counts ({"patent": {"new": 1}}) and plain counters ({"skipped_rows": 2})."""
    for key, value in counts.items():
        if isinstance(value, dict):
            per_kind = total.setdefault(key, {})
            for outcome, number in value.items():
                per_kind[outcome] = per_kind.get(outcome, 0) + number
        else:
            total[key] = total.get(key, 0) + value
    return total


@dataclass
class RunTotals:
    requests: int
    errors: int
    stats: dict[str, Any]


def run_totals(run: HarvestRun) -> RunTotals:
    """The run's own calls plus its checkpoints' (use prefetch_related("checkpoints") for many runs)."""
    totals = RunTotals(requests=run.requests, errors=run.errors, stats={})
    for checkpoint in run.checkpoints.all():
        totals.requests += checkpoint.requests
        totals.errors += checkpoint.errors
        merge_stats(totals.stats, checkpoint.stats)
    return totals


def _as_model_values(record: Record) -> dict[str, Any]:
    return {"kind": record.kind, "application_number": record.application_number, **record.fields}


def upsert_records(
    organization: Organization, applicant: Applicant | None, records: list[Record], now: datetime | None = None
) -> Counter[tuple[str, str]]:
    """Insert new rights, update changed ones (fields, raw, last_changed), touch last_seen on the rest.

    Returns (kind, new|updated|unchanged) counts. A page may list one right twice (joint applicants):
    the last row wins. PostgreSQL takes one INSERT ... ON CONFLICT statement per page; other databases
    (the SQLite of `make run`) a SELECT, a bulk upsert and an UPDATE.
    """
    now = now or timezone.now()
    unique: dict[tuple[str, str, str], Record] = {}
    for record in records:
        unique[(record.kind, record.application_number, record.fields["design_number"])] = record
    if not unique:
        return Counter()
    if connection.vendor == "postgresql":
        return _upsert_postgresql(organization, applicant, list(unique.values()), now)
    return _upsert_portable(organization, applicant, unique, now)


UPSERT_COLUMNS = (
    "kind",
    "application_number",
    "design_number",
    *COMPARED_FIELDS,
    "raw",
    "organization_id",
    "applicant_id",
    "first_seen",
    "last_seen",
    "last_changed",
)
JSON_COLUMNS = {"ipc_codes", "nice_classes", "vienna_codes", "applicant_names", "raw"}
UPDATED_COLUMNS = (*COMPARED_FIELDS, "raw", "organization_id", "applicant_id", "last_seen")
# 1. One statement inserts new rows and updates existing ones (organisation, raw record, last_seen).
# 2. last_changed moves only when a compared field differs (SET sees the old row as `ingest_ipright`).
# 3. RETURNING tells the outcomes apart: xmax = 0 for an insert; last_changed = last_seen for a change.
UPSERT_SQL = f"""
INSERT INTO ingest_ipright ({", ".join(UPSERT_COLUMNS)}) VALUES %s
ON CONFLICT (kind, application_number, design_number) DO UPDATE SET
{", ".join(f"{column} = EXCLUDED.{column}" for column in UPDATED_COLUMNS)},
last_changed = CASE WHEN ({", ".join(f"ingest_ipright.{c}" for c in COMPARED_FIELDS)})
    IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in COMPARED_FIELDS)})
    THEN EXCLUDED.last_changed ELSE ingest_ipright.last_changed END
RETURNING kind, (xmax = 0), (last_changed = last_seen)
"""  # noqa: S608 - column names are constants, values go through psycopg2
UPSERT_TEMPLATE = "(" + ", ".join("%s::jsonb" if c in JSON_COLUMNS else "%s" for c in UPSERT_COLUMNS) + ")"


def _upsert_postgresql(
    organization: Organization, applicant: Applicant | None, records: list[Record], now: datetime
) -> Counter[tuple[str, str]]:
    from psycopg2.extras import execute_values

    rows = []
    for record in records:
        values = {
            **_as_model_values(record),
            "raw": record.raw,
            "organization_id": organization.pk,
            "applicant_id": applicant.pk if applicant else None,
            "first_seen": now,
            "last_seen": now,
            "last_changed": now,
        }
        rows.append(
            [json.dumps(values[c], ensure_ascii=False) if c in JSON_COLUMNS else values[c] for c in UPSERT_COLUMNS]
        )
    with connection.cursor() as cursor:
        returned = execute_values(
            cursor.cursor, UPSERT_SQL, rows, template=UPSERT_TEMPLATE, page_size=len(rows), fetch=True
        )
    counts: Counter[tuple[str, str]] = Counter()
    for kind, inserted, changed in returned:
        counts[(kind, "new" if inserted else "updated" if changed else "unchanged")] += 1
    return counts


def _upsert_portable(
    organization: Organization,
    applicant: Applicant | None,
    unique: dict[tuple[str, str, str], Record],
    now: datetime,
) -> Counter[tuple[str, str]]:
    existing = {
        (row["kind"], row["application_number"], row["design_number"]): row
        for row in IPRight.objects.filter(application_number__in={key[1] for key in unique}).values(
            "id", "kind", "application_number", "design_number", *COMPARED_FIELDS
        )
    }
    counts: Counter[tuple[str, str]] = Counter()
    to_write: list[IPRight] = []
    unchanged_ids: list[int] = []
    for key, record in unique.items():
        values = _as_model_values(record)
        old = existing.get(key)
        if old is not None and all(old[name] == values[name] for name in COMPARED_FIELDS):
            unchanged_ids.append(old["id"])
            counts[(record.kind, "unchanged")] += 1
            continue
        counts[(record.kind, "updated" if old else "new")] += 1
        to_write.append(
            IPRight(
                **values,
                raw=record.raw,
                organization=organization,
                applicant=applicant,
                first_seen=now,
                last_seen=now,
                last_changed=now,
            )
        )
    if to_write:
        IPRight.objects.bulk_create(
            to_write,
            update_conflicts=True,
            unique_fields=["kind", "application_number", "design_number"],
            update_fields=[*COMPARED_FIELDS, "raw", "organization", "applicant", "last_seen", "last_changed"],
        )
    if unchanged_ids:
        IPRight.objects.filter(pk__in=unchanged_ids).update(last_seen=now, organization=organization)
    return counts


# --- run state -------------------------------------------------------------------------------------


def _reached_kipris(exc: BaseException) -> bool:
    """Whether the error came back from a call to KIPRIS (counted as a request) or stopped one before it."""
    return isinstance(exc, KiprisError) and not isinstance(exc, BudgetExhaustedError | CircuitOpenError)


def note_error(checkpoint_id: int, exc: BaseException, *, status: str | None = None, context: str = "") -> None:
    """Record an error on the checkpoint and count it on the run; `status` also moves it (paused/failed)."""
    error = (f"{context}{exc}" if isinstance(exc, KiprisError) else f"{context}{type(exc).__name__}: {exc}")[:2000]
    updates: dict[str, Any] = {
        "error": error,
        "errors": F("errors") + 1,
        "requests": F("requests") + int(_reached_kipris(exc)),
        "updated_at": timezone.now(),
    }
    if status:
        updates |= {"status": status, "lease_token": "", "lease_until": None}
    if not HarvestCheckpoint.objects.filter(pk=checkpoint_id).update(**updates):
        return
    run_id = HarvestCheckpoint.objects.values_list("run_id", flat=True).get(pk=checkpoint_id)
    HarvestRun.objects.filter(pk=run_id).update(error=error)
    if status:
        complete_run_if_finished(run_id)
        update_queue_gauge()


def note_run_error(run_id: int, exc: BaseException, *, fail: bool) -> None:
    """An error before any checkpoint exists (the applicant lookup); `fail` ends the run."""
    HarvestRun.objects.filter(pk=run_id).update(
        errors=F("errors") + 1, requests=F("requests") + int(_reached_kipris(exc)), error=str(exc)[:2000]
    )
    if fail:
        finish_run(run_id, RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")


def finish_run(run_id: int, status: str, *, error: str = "") -> None:
    updates: dict[str, Any] = {"status": status, "finished_at": timezone.now()}
    if error:
        updates["error"] = error[:2000]
    HarvestRun.objects.filter(pk=run_id).update(**updates)
    logger.info("harvest run %s finished: %s %s", run_id, status, error)


def complete_run_if_finished(run_id: int) -> None:
    """When no checkpoint is left to run, the run takes the worst state among them (failed > paused > done)."""
    states = set(HarvestCheckpoint.objects.filter(run_id=run_id).values_list("status", flat=True))
    if not states or states - TERMINAL:
        return
    status = next(s for s in (RunStatus.FAILED, RunStatus.PAUSED, RunStatus.DONE) if s in states)
    updated = (
        HarvestRun.objects.filter(pk=run_id).exclude(status=status).update(status=status, finished_at=timezone.now())
    )
    if updated:
        logger.info("harvest run %s %s", run_id, status)


def update_queue_gauge() -> None:
    pending = HarvestCheckpoint.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).count()
    metrics.QUEUE_SIZE.set(pending)


def resumable_checkpoints(*, include_paused: bool) -> list[int]:
    """Checkpoints a crash or a pause left behind: running with an expired lease, queued, or paused."""
    now = timezone.now()
    stalled = Q(status=RunStatus.RUNNING) & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    stalled |= Q(
        status=RunStatus.QUEUED, updated_at__lt=now - timedelta(seconds=settings.KIPRIS_CHECKPOINT_LEASE_SECONDS)
    )
    if include_paused:
        stalled |= Q(status=RunStatus.PAUSED)
    ids = list(HarvestCheckpoint.objects.filter(stalled).values_list("pk", flat=True))
    if include_paused and ids:
        HarvestRun.objects.filter(checkpoints__pk__in=ids, status=RunStatus.PAUSED).update(
            status=RunStatus.RUNNING, finished_at=None
        )
        HarvestCheckpoint.objects.filter(pk__in=ids, status=RunStatus.PAUSED).update(status=RunStatus.QUEUED)
    return ids
