from __future__ import annotations

from typing import Any

from django.contrib import admin

from .models import ManagedSchedule, ScheduleChange


@admin.register(ManagedSchedule)
class ManagedScheduleAdmin(admin.ModelAdmin):
    """Which beat entries came from code; edit the entries themselves under Periodic tasks."""

    list_display = ["name", "synced_at"]
    search_fields = ["name"]
    readonly_fields = ["name", "fingerprint", "declared", "synced_at"]


@admin.register(ScheduleChange)
class ScheduleChangeAdmin(admin.ModelAdmin):
    """When a beat entry's behaviour changed (an operator's edit or a deploy); written, never edited."""

    list_display = ["name", "changed_at", "enabled"]
    list_filter = ["enabled"]
    search_fields = ["name"]
    date_hierarchy = "changed_at"

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False
