"""anomaly's admin: events (acknowledge/resolve in bulk), criteria versions and rows, per-sensor settings."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import events
from .models import (
    AnomalyEvent,
    Criteria,
    CriteriaVersion,
    DetectionRun,
    EventStatus,
    NightMinimum,
    SensorMethodSettings,
)


@admin.register(AnomalyEvent)
class AnomalyEventAdmin(admin.ModelAdmin):
    list_display = ["id", "subject", "metric", "method", "severity", "status", "started_at", "last_fired_at",
                    "ended_at", "peak_score", "fired_count"]  # fmt: skip
    list_filter = ["status", "source", "method", "metric", "severity"]
    search_fields = ["subject"]
    date_hierarchy = "started_at"
    readonly_fields = ["source", "sensor", "subject", "metric", "method", "started_at", "last_fired_at", "ended_at",
                       "peak_score", "fired_count", "evidence", "acknowledged_at", "acknowledged_by", "resolved_by",
                       "created_at"]  # fmt: skip
    actions = ["acknowledge", "resolve"]

    def _apply(self, request: HttpRequest, queryset: QuerySet[AnomalyEvent], change: events.Transition) -> None:
        done = 0
        for event in queryset.exclude(status=EventStatus.RESOLVED):
            change(event.pk, request.user.pk)
            done += 1
        self.message_user(request, f"{done} event(s) updated", messages.SUCCESS)

    @admin.action(description="Acknowledge selected events")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[AnomalyEvent]) -> None:
        self._apply(request, queryset, events.acknowledge)

    @admin.action(description="Resolve selected events now")
    def resolve(self, request: HttpRequest, queryset: QuerySet[AnomalyEvent]) -> None:
        self._apply(request, queryset, events.resolve)


class CriteriaInline(admin.TabularInline):
    model = Criteria
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["sensor", "metric", "weekend", "hour", "median", "lower", "upper", "max_flat_run", "night_baseline"]
    readonly_fields = ["sensor", "metric", "weekend", "hour", "median", "lower", "upper", "max_flat_run",
                       "night_baseline"]  # fmt: skip
    max_num = 0


@admin.register(CriteriaVersion)
class CriteriaVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "source", "data_start", "data_end", "sensors", "readings"]
    readonly_fields = ["created_at", "source", "source_detail", "data_start", "data_end", "readings", "sensors",
                       "parameters"]  # fmt: skip


@admin.register(Criteria)
class CriteriaAdmin(admin.ModelAdmin):
    list_display = ["version", "sensor", "metric", "weekend", "hour", "median", "lower", "upper", "night_baseline"]
    list_filter = ["metric", "weekend", "hour"]
    search_fields = ["sensor__code"]
    list_select_related = ["sensor", "version"]


@admin.register(SensorMethodSettings)
class SensorMethodSettingsAdmin(admin.ModelAdmin):
    list_display = ["sensor", "system_enabled", "value_enabled", "predict_enabled", "night_enabled", "value_k",
                    "gap_minutes", "stuck_minutes", "night_margin", "night_nights", "severity"]  # fmt: skip
    list_editable = ["system_enabled", "value_enabled", "predict_enabled", "night_enabled"]
    search_fields = ["sensor__code"]
    autocomplete_fields = ["sensor"]


@admin.register(NightMinimum)
class NightMinimumAdmin(admin.ModelAdmin):
    list_display = ["sensor", "night", "min_flow", "baseline", "exceeded", "streak"]
    list_filter = ["exceeded", "night"]
    search_fields = ["sensor__code"]


@admin.register(DetectionRun)
class DetectionRunAdmin(admin.ModelAdmin):
    list_display = ["minute", "sensors", "duration_ms", "no_forecast", "no_criteria", "fired"]
    date_hierarchy = "minute"
