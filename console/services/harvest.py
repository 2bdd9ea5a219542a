"""What the harvest page shows and does: organisations, runs with progress per kind, guards, start a harvest.

Totals come from ingest.services.run_totals, the guards' state from ingest.kipris.guards (read-only), a
new run from ingest.services.start_harvest (the one way to start one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.db.models import Count, Max, Q
from django.utils import timezone

from ingest import services as ingest_services
from ingest.kipris.guards import CircuitBreaker, MonthlyBudget, TokenBucket, budget_month
from ingest.models import HarvestRun, Organization, RunStatus, SearchKind

logger = logging.getLogger(__name__)

RUNS_SHOWN = 30
FAILED_SHOWN = 20
UNDER_WAY = (RunStatus.QUEUED, RunStatus.RUNNING)


@dataclass
class Guards:
    """The monthly budget, the token bucket and the circuit; `error` when Redis cannot be read."""

    month: str
    budget: int
    used: int
    rate: float
    burst: int
    tokens: float | None
    circuit_open: bool | None
    error: str = ""

    @property
    def budget_percent(self) -> int | None:
        return min(100, round(100 * self.used / self.budget)) if self.budget else None

    @property
    def tokens_percent(self) -> int | None:
        return None if self.tokens is None else max(0, min(100, round(100 * self.tokens / self.burst)))


def guards() -> Guards:
    state = Guards(
        month=budget_month(),
        budget=settings.KIPRIS_MONTHLY_BUDGET,
        used=0,
        rate=settings.KIPRIS_RATE_PER_SEC,
        burst=settings.KIPRIS_BURST,
        tokens=None,
        circuit_open=None,
    )
    try:
        state.used = MonthlyBudget(settings.KIPRIS_MONTHLY_BUDGET).used()
        state.tokens = TokenBucket(settings.KIPRIS_RATE_PER_SEC, settings.KIPRIS_BURST).available()
        state.circuit_open = CircuitBreaker(
            settings.KIPRIS_CIRCUIT_FAILURES, settings.KIPRIS_CIRCUIT_OPEN_SECONDS
        ).is_open()
    except redis.RedisError as exc:
        logger.warning("KIPRIS guards unavailable: %s", exc)
        state.error = f"Redis unreachable: {exc}"
    return state


def run_row(run: HarvestRun, now: datetime) -> dict[str, Any]:
    """One run: per search kind pages fetched of total, records found (new/updated/unchanged), its call rate."""
    totals = ingest_services.run_totals(run)
    kinds: dict[str, dict[str, Any]] = {}
    for checkpoint in run.checkpoints.all():
        per_kind = kinds.setdefault(checkpoint.kind, {"fetched": 0, "total": 0, "known": True, "states": set()})
        per_kind["fetched"] += checkpoint.fetched
        per_kind["known"] = per_kind["known"] and checkpoint.total is not None
        per_kind["total"] += checkpoint.total or 0
        per_kind["states"].add(checkpoint.status)
    progress = []
    for kind, item in kinds.items():
        percent = round(100 * item["fetched"] / item["total"]) if item["known"] and item["total"] else None
        if item["known"] and not item["total"]:
            percent = 100
        progress.append(
            {
                "kind": SearchKind(kind).label,
                "fetched": item["fetched"],
                "total": item["total"] if item["known"] else None,
                "percent": percent,
                "states": ", ".join(sorted(item["states"])),
            }
        )
    found = {kind: sum(counts.values()) for kind, counts in totals.stats.items() if isinstance(counts, dict) and counts}
    elapsed = ((run.finished_at or now) - run.started_at).total_seconds() if run.started_at else None
    return {
        "run": run,
        "progress": progress,
        "found": found,
        "records": sum(found.values()),
        "requests": totals.requests,
        "errors": totals.errors,
        "rate": totals.requests / elapsed if elapsed else None,
    }


@dataclass
class HarvestPage:
    organizations: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    failed: list[HarvestRun]
    guards: Guards
    under_way: int
    kinds: list[tuple[str, str]]


def harvest_page(now: datetime | None = None) -> HarvestPage:
    now = now or timezone.now()
    organizations = Organization.objects.annotate(
        rights_count=Count("rights", distinct=True),
        last_run_at=Max("runs__created_at"),
        active_runs=Count("runs", filter=Q(runs__status__in=UNDER_WAY), distinct=True),
    ).order_by("name", "id")
    runs = (
        HarvestRun.objects.select_related("organization")
        .prefetch_related("checkpoints")
        .order_by("-created_at", "-id")[:RUNS_SHOWN]
    )
    failed = list(
        HarvestRun.objects.select_related("organization")
        .filter(Q(status=RunStatus.FAILED) | (Q(status=RunStatus.PAUSED) & ~Q(error="")))
        .order_by("-created_at", "-id")[:FAILED_SHOWN]
    )
    return HarvestPage(
        organizations=list(organizations.values()),
        runs=[run_row(run, now) for run in runs],
        failed=failed,
        guards=guards(),
        under_way=HarvestRun.objects.filter(status__in=UNDER_WAY).count(),
        kinds=list(SearchKind.choices),
    )


def start(organization_id: int, kinds: list[str]) -> HarvestRun:
    """Queue a harvest (ingest.services.start_harvest); ValueError when one is under way or a kind is unknown."""
    run = ingest_services.start_harvest(organization_id, kinds or None)
    if run is None:
        raise ValueError("a harvest of this organisation is already queued or running")
    return run
