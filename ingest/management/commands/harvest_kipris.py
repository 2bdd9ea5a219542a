"""`manage.py harvest_kipris [--org ID ...|--all] [--kind K ...] [--wait]`: queue KIPRIS harvests.

With --wait it blocks until every run is finished (done, failed or paused), showing progress over the
applicant x search checkpoints, then prints a summary: records new/updated per kind, requests, errors.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from ingest import services
from ingest.models import HarvestCheckpoint, HarvestRun, Organization, RunStatus


class Command(BaseCommand):
    help = "Harvest KIPRIS rights for some or all organisations on the Celery `ingest` queue."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--org", type=int, action="append", dest="orgs", metavar="ID")
        target.add_argument("--all", action="store_true", help="every active organisation")
        parser.add_argument("--kind", action="append", dest="kinds", choices=services.ALL_KINDS)
        parser.add_argument("--wait", action="store_true", help="block until finished; print a summary")
        parser.add_argument("--timeout", type=float, default=0, help="with --wait: give up after N seconds")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["all"]:
            org_ids = list(Organization.objects.filter(active=True).values_list("pk", flat=True))
        else:
            org_ids = options["orgs"]
            missing = sorted(
                set(org_ids) - set(Organization.objects.filter(pk__in=org_ids).values_list("pk", flat=True))
            )
            if missing:
                raise CommandError(f"no organisation with id {', '.join(map(str, missing))}")
        if not org_ids:
            raise CommandError("no active organisations to harvest (import some with import_orgs)")
        run_ids = []
        for org_id, run in zip(org_ids, services.start_harvests(org_ids, options["kinds"]), strict=True):
            if run is None:
                self.stderr.write(f"organisation {org_id} already has a harvest queued or running: skipped")
            else:
                run_ids.append(run.pk)
        if not run_ids:
            raise CommandError("nothing to queue")
        self.stdout.write(f"queued {len(run_ids)} harvest run(s): {', '.join(map(str, run_ids))}")
        if options["wait"]:
            self._wait(run_ids, options["timeout"])

    def _wait(self, run_ids: list[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout if timeout else None
        terminal = {RunStatus.DONE, RunStatus.FAILED, RunStatus.PAUSED}
        with tqdm(total=0, unit="search", desc="harvest", file=self.stderr) as bar:
            while True:
                checkpoints = HarvestCheckpoint.objects.filter(run_id__in=run_ids)
                bar.total = checkpoints.count()
                bar.n = checkpoints.filter(status__in=terminal).count()
                bar.refresh()
                if not HarvestRun.objects.filter(pk__in=run_ids).exclude(status__in=terminal).exists():
                    break
                if deadline and time.monotonic() > deadline:
                    raise CommandError(f"runs {run_ids} not finished after {timeout:.0f} s; still running on Celery")
                time.sleep(0.5)
        self._summary(run_ids)

    def _summary(self, run_ids: list[int]) -> None:
        totals: dict[str, Counter[str]] = {}
        requests = errors = 0
        statuses: Counter[str] = Counter()
        runs = HarvestRun.objects.filter(pk__in=run_ids).select_related("organization").prefetch_related("checkpoints")
        for run in runs:
            run_total = services.run_totals(run)
            requests += run_total.requests
            errors += run_total.errors
            statuses[run.status] += 1
            for kind, counts in run_total.stats.items():
                if isinstance(counts, dict):
                    totals.setdefault(kind, Counter()).update(counts)
            if run.error:
                self.stdout.write(f"run {run.pk} ({run.organization.name}): {run.status}: {run.error}")
        for kind in sorted(totals):
            counts = totals[kind]
            self.stdout.write(
                f"{kind:<10} new {counts['new']:>7}  updated {counts['updated']:>7}  unchanged {counts['unchanged']:>7}"
            )
        state = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
        self.stdout.write(f"runs: {state}; requests: {requests}; errors: {errors}")
