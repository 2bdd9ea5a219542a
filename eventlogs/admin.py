"""eventlogs in the admin: batches, the archive manifest, failed events (with recovery), typed rows (read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import TABLES, ArchiveFile, Batch, FailedEvent
from .services.recovery import recover


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Batch)
class BatchAdmin(ReadOnly):
    list_display = ["id", "kind", "client", "received_at", "records", "status", "enriched", "failed", "duplicates"]
    list_filter = ["kind", "status"]
    date_hierarchy = "received_at"


@admin.register(ArchiveFile)
class ArchiveFileAdmin(ReadOnly):
    list_display = ["path", "kind", "hour", "records", "bytes", "sha256", "sealed_at"]
    list_filter = ["kind"]


@admin.register(FailedEvent)
class FailedEventAdmin(ReadOnly):
    list_display = ["created_at", "kind", "reason", "schema_path", "message", "batch", "line", "recovered_at"]
    list_filter = ["kind", "reason", ("recovered_at", admin.EmptyFieldListFilter)]
    search_fields = ["message", "raw"]
    actions = ["recover_selected"]

    @admin.action(description="Re-run the selected failed events (after a schema fix)")
    def recover_selected(self, request: HttpRequest, queryset: QuerySet[FailedEvent]) -> None:
        recovered = still = 0
        for kind in queryset.values_list("kind", flat=True).distinct():
            result = recover(kind, ids=list(queryset.filter(kind=kind).values_list("pk", flat=True)))
            recovered, still = recovered + result.recovered, still + result.still_failing
        self.message_user(request, f"{recovered} recovered, {still} still failing", messages.INFO)


for model in TABLES.values():
    admin.site.register(
        model,
        type(f"{model.__name__}Admin", (ReadOnly,), {"list_display": ["event_id", "ts", "account"],
                                                    "search_fields": ["account"], "date_hierarchy": "ts"}),
    )  # fmt: skip


from .detection import admin as detection_admin  # noqa: E402, F401 - behaviour findings
