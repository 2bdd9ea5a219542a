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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import metrics
from .kipris.client import SEARCHES, ApplicantInfo, Family, KiprisClient, Page
from .kipris.errors import BudgetExhaustedError, CircuitOpenError, KiprisError
from .kipris.inflight import InFlight
from .kipris.parsing import Record
from .logs import harvest_context
from .models import (
    Applicant,
    HarvestCheckpoint,
    HarvestRun,
    IPRight,
    Organization,
    RightOwner,
    RunStatus,
    SearchKind,
)

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


def start_harvest(organization_id: int, kinds: list[str] | None = None, *, queue: bool = True) -> HarvestRun | None:
    """Create and queue a run unless one is already queued or running (then None); the one way to start one.

    Race-free: a no-op UPDATE of the organisation's row takes its row lock (PostgreSQL) or the database
    write lock (SQLite) before the check, so two callers at once (beat, API, command, admin) are
    serialised and the second sees the first's run. The first task is sent after the commit; with
    `queue=False` the caller sends it (start_harvests batches many runs into few tasks).
    """
    from .tasks import queue_runs

    chosen = validate_kinds(kinds)
    with transaction.atomic():
        if not Organization.objects.filter(pk=organization_id).update(name=F("name")):
            raise Organization.DoesNotExist(f"no organisation with id {organization_id}")
        if has_active_run(organization_id):
            logger.info("organization %s still has a harvest under way; not queued again", organization_id)
            return None
        run = HarvestRun.objects.create(organization_id=organization_id, kinds=chosen)
        if queue:
            queue_runs([run.pk])
    return run


def start_harvests(organization_ids: list[int], kinds: list[str] | None = None) -> list[HarvestRun | None]:
    """start_harvest for each organisation; the runs go out in tasks of KIPRIS_CONCURRENCY, whose applicant
    lookups are then in flight together (one task per run would hold one request at a time)."""
    from .tasks import queue_runs

    runs = [start_harvest(organization_id, kinds, queue=False) for organization_id in organization_ids]
    queue_runs([run.pk for run in runs if run is not None])
    return runs


# --- applicant numbers -----------------------------------------------------------------------------


def store_applicants(organization: Organization, found: list[ApplicantInfo]) -> list[Applicant]:
    """Upsert the applicant numbers a lookup found for the organisation."""
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


def _lookup(client: KiprisClient, organization: Organization) -> tuple[list[ApplicantInfo], int]:
    """The organisation's applicant numbers (V3, then V2) and the calls that took (runs in a pool thread)."""
    sent = client.requests_sent
    found = client.find_applicants(organization.business_number, organization.corporate_number)
    return found, client.requests_sent - sent


def plan_runs(run_ids: list[int], client: KiprisClient | None = None) -> dict[int, list[int] | BaseException]:
    """Resolve the runs' applicant numbers, their lookups in flight at once, and create their checkpoints.

    Per run found: the checkpoint ids to harvest (one per applicant x search), or the error its lookup
    raised (then nothing is created; the caller pauses, retries or fails the run). Re-running it (a
    redelivered task) reuses the existing checkpoints and returns the unfinished ones.
    """
    planned: dict[int, list[int] | BaseException] = {}
    runs = {run.pk: run for run in HarvestRun.objects.select_related("organization").filter(pk__in=run_ids)}
    with InFlight(settings.KIPRIS_CONCURRENCY) as pool:
        for run in runs.values():
            if run.status in TERMINAL:
                planned[run.pk] = []
                continue
            HarvestRun.objects.filter(pk=run.pk, started_at__isnull=True).update(started_at=timezone.now())
            HarvestRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
            org = run.organization
            with harvest_context(org.org_type, "applicant"):
                pool.submit(run.pk, _lookup, client or KiprisClient.shared(org_type=org.org_type), org)
        for run_id, result in pool.results():
            run = runs[run_id]
            with harvest_context(run.organization.org_type, "applicant"):
                planned[run_id] = result if isinstance(result, BaseException) else _plan(run, *result)
    if any(not isinstance(result, BaseException) and result for result in planned.values()):
        update_queue_gauge()
    return planned


def _plan(run: HarvestRun, found: list[ApplicantInfo], calls: int) -> list[int]:
    HarvestRun.objects.filter(pk=run.pk).update(requests=F("requests") + calls)
    applicants = store_applicants(run.organization, found)
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
    """What one task did with one checkpoint. `error` stopped it; the pages before the failed one are kept."""

    done: bool
    pages: int
    claimed: bool = True
    error: BaseException | None = None


@dataclass
class _Search:
    """A claimed checkpoint's progress inside one batch; read and changed on the task's thread only."""

    checkpoint: HarvestCheckpoint
    client: KiprisClient
    last_page: int  # the last page this task may request (KIPRIS_PAGES_PER_TASK from where it started)
    next_request: int
    outcome: BatchOutcome = field(default_factory=lambda: BatchOutcome(done=False, pages=0))
    ready: dict[int, Page] = field(default_factory=dict)  # fetched, waiting for the pages before them
    failed_page: int | None = None
    unused_calls: int = 0  # failed calls that reached KIPRIS but are not the outcome's error

    @property
    def stopped(self) -> bool:
        return self.outcome.done or self.failed_page is not None


def harvest_checkpoints(
    checkpoint_ids: list[int], *, token: str, pages: int, client: KiprisClient | None = None
) -> dict[int, BatchOutcome]:
    """Up to `pages` pages of each checkpoint, with up to KIPRIS_CONCURRENCY requests in flight across them.

    1. Claim each checkpoint's lease (one held by another live task is left to it: claimed=False).
    2. Request each search's first page; once a committed page tells the total, its next pages too,
       up to `pages` per checkpoint. Every request takes its own token from the global bucket (and
       the budget, and passes the circuit), so a process is bound by the rate limit, not by round trips.
    3. As answers arrive (in any order), commit each checkpoint's pages in page order, each page with
       the checkpoint's advance in one transaction under the lease. A failed page stops its search:
       the pages before it are committed, those after it discarded (fetched again by the next task).
    4. Calls that reached KIPRIS but were not committed (pages after a failure, a short page or a lost
       lease) are still counted on the checkpoint: `requests` is what KIPRIS served, budget included.
    5. Leases of unfinished checkpoints are handed back: the caller queues them again, or retries the
       failed ones, under new task ids.
    """
    outcomes: dict[int, BatchOutcome] = {}
    searches: dict[int, _Search] = {}
    for checkpoint_id in checkpoint_ids:
        if not claim(checkpoint_id, token):
            logger.info("checkpoint %s is finished or held by another task; nothing to do", checkpoint_id)
            outcomes[checkpoint_id] = BatchOutcome(done=True, pages=0, claimed=False)
            continue
        checkpoint = HarvestCheckpoint.objects.select_related("applicant", "organization").get(pk=checkpoint_id)
        searches[checkpoint_id] = _Search(
            checkpoint,
            client or KiprisClient.shared(org_type=checkpoint.organization.org_type),
            last_page=checkpoint.next_page + pages - 1,
            next_request=checkpoint.next_page,
        )
        outcomes[checkpoint_id] = searches[checkpoint_id].outcome
    family = Family(settings.KIPRIS_SEARCH_FAMILY)
    with InFlight(settings.KIPRIS_CONCURRENCY) as pool:
        for search in searches.values():
            _request_pages(pool, search, family)
        for (checkpoint_id, page_number), result in pool.results():
            search = searches[checkpoint_id]
            with harvest_context(search.checkpoint.organization.org_type, search.checkpoint.kind):
                if isinstance(result, BaseException):
                    _page_failed(search, page_number, result)
                else:
                    search.ready[page_number] = result
                _commit_ready(search, token)
                _request_pages(pool, search, family)
    for search in searches.values():
        _finish_search(search, token)
    if any(search.outcome.done for search in searches.values()):
        update_queue_gauge()
    return outcomes


def _request_pages(pool: InFlight, search: _Search, family: Family) -> None:
    """Submit the pages the search may have in flight: one until its total is known, then all it lacks."""
    if search.stopped:
        return
    checkpoint = search.checkpoint
    page_size = SEARCHES[checkpoint.kind].page_size
    last = checkpoint.next_page
    if checkpoint.total is not None:
        last += max(1, -(-(checkpoint.total - checkpoint.fetched) // page_size)) - 1
    with harvest_context(checkpoint.organization.org_type, checkpoint.kind):
        while search.next_request <= min(last, search.last_page):
            page = search.next_request
            pool.submit(
                (checkpoint.pk, page),
                search.client.search_page,
                checkpoint.kind,
                checkpoint.applicant.number,
                page=page,
                fetched=checkpoint.fetched + (page - checkpoint.next_page) * page_size,
                family=family,
            )
            search.next_request += 1


def _page_failed(search: _Search, page: int, error: BaseException) -> None:
    """The earliest failed page's error is the search's; a later one only counts its call."""
    if search.failed_page is not None and page > search.failed_page:
        search.unused_calls += _reached_kipris(error)
        return
    if search.outcome.error is not None:
        search.unused_calls += _reached_kipris(search.outcome.error)
    search.failed_page, search.outcome.error = page, error


def _commit_ready(search: _Search, token: str) -> None:
    while not search.outcome.done and search.checkpoint.next_page in search.ready:
        if not _commit_page(search, search.ready.pop(search.checkpoint.next_page), token):
            # Our lease expired and another task took over: its view wins, ours is discarded.
            logger.warning("checkpoint %s taken over by another task; stopping", search.checkpoint.pk)
            search.outcome.done, search.outcome.claimed = True, False


def _commit_page(search: _Search, page: Page, token: str) -> bool:
    """Store one page's rights and advance the checkpoint in one transaction; False if the lease is lost."""
    started = time.perf_counter()
    checkpoint = search.checkpoint
    lease = timedelta(seconds=settings.KIPRIS_CHECKPOINT_LEASE_SECONDS)
    with transaction.atomic():
        # Write first: this UPDATE both checks that the checkpoint is still ours at this page and
        # locks it (PostgreSQL row lock; SQLite's write lock, taken before any read in the transaction).
        if not HarvestCheckpoint.objects.filter(
            pk=checkpoint.pk, lease_token=token, next_page=checkpoint.next_page
        ).update(lease_until=timezone.now() + lease):
            return False
        # Re-read under the lock: a retried task's on_retry (note_error) may have counted an error
        # after this task started.
        checkpoint = HarvestCheckpoint.objects.select_related("applicant", "organization").get(pk=checkpoint.pk)
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
        checkpoint.lease_token, checkpoint.lease_until = ("", None) if done else (token, timezone.now() + lease)
        checkpoint.save(
            update_fields=[
                *("stats", "requests", "next_page", "fetched", "total", "status", "error"),
                *("lease_token", "lease_until", "updated_at"),
            ]
        )
    search.checkpoint = checkpoint
    search.outcome.pages += 1
    search.outcome.done = done
    metrics.WORKER_PROCESS_SECONDS.labels(ipr_mode=checkpoint.kind, org_type=checkpoint.organization.org_type).observe(
        time.perf_counter() - started
    )
    return True


def _finish_search(search: _Search, token: str) -> None:
    """Count the calls KIPRIS served but no commit counted; close the run or hand the lease back."""
    checkpoint = search.checkpoint
    if search.outcome.done and search.outcome.error is not None:
        # A page after the last one (a short page ended the search) or after a lost lease failed: moot.
        search.unused_calls += _reached_kipris(search.outcome.error)
        search.outcome.error = None
    unused = len(search.ready) + search.unused_calls
    if unused:
        HarvestCheckpoint.objects.filter(pk=checkpoint.pk).update(requests=F("requests") + unused)
    with harvest_context(checkpoint.organization.org_type, checkpoint.kind):
        if search.outcome.done and search.outcome.claimed:
            complete_run_if_finished(checkpoint.run_id)
        elif not search.outcome.done:
            HarvestCheckpoint.objects.filter(pk=checkpoint.pk, lease_token=token).update(
                lease_token="", lease_until=None
            )


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
        counts, right_ids = _upsert_postgresql(list(unique.values()), now)
    else:
        counts, right_ids = _upsert_portable(unique, now)
    _record_owner(organization, applicant, right_ids, now)
    return counts


def _record_owner(organization: Organization, applicant: Applicant | None, right_ids: list[int], now: datetime) -> None:
    """The organisation holds these rights (as well as any other that holds them), found under `applicant`.

    One upsert on (right, organisation): a new owner row gets first_seen, every row seen gets last_seen
    and the applicant number the search used. Co-applicants each keep their own row.
    """
    RightOwner.objects.bulk_create(
        [
            RightOwner(right_id=right_id, organization=organization, applicant=applicant, first_seen=now, last_seen=now)
            for right_id in right_ids
        ],
        update_conflicts=True,
        unique_fields=["right", "organization"],
        update_fields=["applicant", "last_seen"],
        batch_size=1000,
    )


UPSERT_COLUMNS = (
    "kind",
    "application_number",
    "design_number",
    *COMPARED_FIELDS,
    "raw",
    "first_seen",
    "last_seen",
    "last_changed",
)
JSON_COLUMNS = {"ipc_codes", "nice_classes", "vienna_codes", "applicant_names", "raw"}
UPDATED_COLUMNS = (*COMPARED_FIELDS, "raw", "last_seen")
# 1. One statement inserts new rows and updates existing ones (raw record, last_seen); owners are separate.
# 2. last_changed moves only when a compared field differs (SET sees the old row as `ingest_ipright`).
# 3. RETURNING tells the outcomes apart: xmax = 0 for an insert; last_changed = last_seen for a change.
UPSERT_SQL = f"""
INSERT INTO ingest_ipright ({", ".join(UPSERT_COLUMNS)}) VALUES %s
ON CONFLICT (kind, application_number, design_number) DO UPDATE SET
{", ".join(f"{column} = EXCLUDED.{column}" for column in UPDATED_COLUMNS)},
last_changed = CASE WHEN ({", ".join(f"ingest_ipright.{c}" for c in COMPARED_FIELDS)})
    IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in COMPARED_FIELDS)})
    THEN EXCLUDED.last_changed ELSE ingest_ipright.last_changed END
RETURNING id, kind, (xmax = 0), (last_changed = last_seen)
"""  # noqa: S608 - column names are constants, values go through psycopg2
UPSERT_TEMPLATE = "(" + ", ".join("%s::jsonb" if c in JSON_COLUMNS else "%s" for c in UPSERT_COLUMNS) + ")"


def _upsert_postgresql(records: list[Record], now: datetime) -> tuple[Counter[tuple[str, str]], list[int]]:
    from psycopg2.extras import execute_values

    rows = []
    for record in records:
        values = {
            **_as_model_values(record),
            "raw": record.raw,
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
    for _, kind, inserted, changed in returned:
        counts[(kind, "new" if inserted else "updated" if changed else "unchanged")] += 1
    return counts, [row[0] for row in returned]


def _upsert_portable(
    unique: dict[tuple[str, str, str], Record], now: datetime
) -> tuple[Counter[tuple[str, str]], list[int]]:
    numbers = {key[1] for key in unique}
    existing = {
        (row["kind"], row["application_number"], row["design_number"]): row
        for row in IPRight.objects.filter(application_number__in=numbers).values(
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
        to_write.append(IPRight(**values, raw=record.raw, first_seen=now, last_seen=now, last_changed=now))
    if to_write:
        IPRight.objects.bulk_create(
            to_write,
            update_conflicts=True,
            unique_fields=["kind", "application_number", "design_number"],
            update_fields=[*COMPARED_FIELDS, "raw", "last_seen", "last_changed"],
        )
    if unchanged_ids:
        IPRight.objects.filter(pk__in=unchanged_ids).update(last_seen=now)
    ids = [
        pk
        for pk, *key in IPRight.objects.filter(application_number__in=numbers).values_list(
            "id", "kind", "application_number", "design_number"
        )
        if tuple(key) in unique
    ]
    return counts, ids


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
    announce_unsuccessful_run(run_id)


def announce_unsuccessful_run(run_id: int) -> None:
    """Slack/webhook alert for a run that ended failed (nothing harvested) or partial (some searches missing).

    Names the organisation, its type, each search that did not finish and KIPRIS's error. Sent after
    the commit, once per run (core.notify deduplicates on the run's key).
    """
    from core.notify import Alert, notify

    run = HarvestRun.objects.select_related("organization").get(pk=run_id)
    if run.status not in {RunStatus.FAILED, RunStatus.PAUSED}:
        return
    checkpoints = list(run.checkpoints.select_related("applicant").order_by("id"))
    finished = [c for c in checkpoints if c.status == RunStatus.DONE]
    missing = [c for c in checkpoints if c.status != RunStatus.DONE]
    outcome = "failed" if run.status == RunStatus.FAILED and not finished else "partial"
    org = run.organization
    lines = [f"{c.kind} for applicant {c.applicant.number}: {c.status}: {c.error or '-'}" for c in missing]
    if not checkpoints:
        lines = [f"before any search: {run.error or '-'}"]
    alert = Alert(
        key=f"kipris:harvest:{run.pk}",
        status="firing",
        title=f"KIPRIS harvest {outcome}: {org.name}",
        text=f"run {run.pk} of {org.name} ({org.org_type}) ended {run.status}; "
        f"{len(finished)} of {len(checkpoints)} searches finished.\n" + "\n".join(lines),
        severity="critical" if outcome == "failed" else "warning",
        source="ingest",
        labels={
            "organization": org.name,
            "org_type": org.org_type,
            "outcome": outcome,
            "ipr_mode": ",".join(sorted({c.kind for c in missing})) or "applicant",
        },
    )
    transaction.on_commit(lambda: notify(alert))


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
        announce_unsuccessful_run(run_id)


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
