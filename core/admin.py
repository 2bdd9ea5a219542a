from __future__ import annotations

from django.contrib import admin

from .models import ManagedSchedule


@admin.register(ManagedSchedule)
class ManagedScheduleAdmin(admin.ModelAdmin):
    """Which beat entries came from code; edit the entries themselves under Periodic tasks."""

    list_display = ["name", "synced_at"]
    search_fields = ["name"]
    readonly_fields = ["name", "fingerprint", "declared", "synced_at"]
