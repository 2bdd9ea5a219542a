"""sensors's admin: sensors with a link to their readings; readings filterable by sensor, status and day."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .models import HourlyPrediction, Reading, Sensor


@admin.register(Sensor)
class SensorAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "location", "active", "auto_registered", "readings_link", "created_at"]
    list_filter = ["active", "auto_registered"]
    search_fields = ["code", "name", "location"]
    readonly_fields = ["auto_registered", "created_at"]
    fieldsets = [
        (None, {"fields": ["code", "name", "location", "active"]}),
        ("Physical ranges", {"fields": [("flow_min", "flow_max"), ("pressure_min", "pressure_max")]}),
        ("Registration", {"fields": ["auto_registered", "created_at"]}),
    ]

    @admin.display(description="readings")
    def readings_link(self, sensor: Sensor) -> str:
        url = reverse("admin:sensors_reading_changelist") + f"?sensor__id__exact={sensor.pk}"
        return format_html('<a href="{}">readings</a>', url)


@admin.register(Reading)
class ReadingAdmin(admin.ModelAdmin):
    list_display = ["sensor", "ts", "flow", "pressure", "status", "received_at"]
    list_filter = ["status", "sensor__active", "sensor"]
    list_select_related = ["sensor"]
    date_hierarchy = "ts"
    raw_id_fields = ["sensor"]
    ordering = ["-ts"]
    # Millions of rows: no exact COUNT(*) on every page.
    show_full_result_count = False
    search_fields = ["sensor__code"]


@admin.register(HourlyPrediction)
class HourlyPredictionAdmin(admin.ModelAdmin):
    list_display = ["sensor", "hour", "flow", "pressure", "updated_at"]
    list_filter = ["sensor"]
    date_hierarchy = "hour"
    raw_id_fields = ["sensor"]
    ordering = ["-hour"]
