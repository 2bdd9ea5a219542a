"""monitoring's admin: hosts (deactivate retired ones) and their samples, read-only."""

from __future__ import annotations

from django.contrib import admin

from .models import Host, HostSample


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ["name", "active", "cpu_count", "interval_seconds", "last_seen_at"]
    list_filter = ["active"]
    list_editable = ["active"]
    search_fields = ["name"]
    readonly_fields = ["first_seen_at", "last_seen_at", "boot_time", "platform", "cpu_count", "memory_total_bytes"]


@admin.register(HostSample)
class HostSampleAdmin(admin.ModelAdmin):
    list_display = ["host", "ts", "cpu_percent", "memory_percent", "disk_percent"]
    list_filter = ["host"]
    date_hierarchy = "ts"
    list_select_related = ["host"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
