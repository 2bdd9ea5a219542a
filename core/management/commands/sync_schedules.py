"""Mirror the declared periodic tasks into the beat tables (see core/periodic.py)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from core.periodic import sync_periodic_tasks


class Command(BaseCommand):
    help = "Create/update/delete code-declared beat entries; entries an operator edited are kept."

    def handle(self, *args: Any, **options: Any) -> None:
        report = sync_periodic_tasks()
        for verb in ("created", "updated", "kept_operator_edit", "deleted"):
            names = getattr(report, verb)
            self.stdout.write(f"{verb.replace('_', ' ')}: {', '.join(names) if names else '-'}")
