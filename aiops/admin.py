"""aiops' admin: incidents with their members (acknowledge/resolve in bulk), custom series and their
capacity limits, capacity forecasts, the Alertmanager payload archive."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import AlertPayload, CapacityForecast, Incident, IncidentMember, IncidentStatus, MetricSeries
from .services import incidents


class IncidentMemberInline(admin.TabularInline):
    model = IncidentMember
    extra = 0
    can_delete = False
    max_num = 0
    fields = ["event", "matched_on", "added_at"]
    readonly_fields = ["event", "matched_on", "added_at"]


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "group_key", "severity", "status", "started_at", "last_event_at", "resolved_at",
                    "notification_count"]  # fmt: skip
    list_filter = ["status", "severity"]
    search_fields = ["title", "group_key"]
    date_hierarchy = "started_at"
    readonly_fields = ["title", "group_key", "attributes", "severity", "status", "started_at", "last_event_at",
                       "resolved_at", "acknowledged_at", "acknowledged_by", "resolved_by", "first_notified_at",
                       "last_notified_at", "notified_members", "notification_count", "resolved_notified",
                       "created_at", "updated_at"]  # fmt: skip
    inlines = [IncidentMemberInline]
    actions = ["acknowledge", "resolve"]

    def _apply(
        self, request: HttpRequest, queryset: QuerySet[Incident], change: Callable[[int, int | None], Incident]
    ) -> None:
        done = 0
        for incident in queryset.exclude(status=IncidentStatus.RESOLVED):
            change(incident.pk, request.user.pk)
            done += 1
        self.message_user(request, f"{done} incident(s) updated", messages.SUCCESS)

    @admin.action(description="Acknowledge selected incidents")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        self._apply(request, queryset, incidents.acknowledge)

    @admin.action(description="Resolve selected incidents (and their members) now")
    def resolve(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        self._apply(request, queryset, incidents.resolve)


@admin.register(MetricSeries)
class MetricSeriesAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "labels_key", "limit", "first_ts", "last_ts", "state__scored_until"]
    list_select_related = ["state"]
    search_fields = ["name", "labels_key"]
    fields = ["name", "labels", "labels_key", "limit", "first_ts", "last_ts", "scored_until", "detector"]
    readonly_fields = ["name", "labels", "labels_key", "first_ts", "last_ts", "scored_until", "detector"]

    @admin.display(description="scored until")
    def scored_until(self, series: MetricSeries) -> datetime | None:
        state = getattr(series, "state", None)  # none before the first scoring run
        return state.scored_until if state else None

    @admin.display(description="detector")
    def detector(self, series: MetricSeries) -> str:
        state = getattr(series, "state", None)
        return f"{state.detector}, {len(state.state):,} bytes of state" if state else "-"


@admin.register(CapacityForecast)
class CapacityForecastAdmin(admin.ModelAdmin):
    list_display = ["kind", "subject", "window", "current", "limit", "seconds_to_limit", "points", "computed_at"]
    list_filter = ["kind", "window"]
    search_fields = ["subject"]


@admin.register(AlertPayload)
class AlertPayloadAdmin(admin.ModelAdmin):
    list_display = ["id", "received_at", "receiver", "status", "alerts", "processed_at", "error"]
    list_filter = ["status"]
    readonly_fields = ["received_at", "receiver", "group_key", "status", "payload", "alerts", "processed_at", "error"]


from .insight import admin as insight_admin  # noqa: E402, F401 - insight: Insight rows (aiops/insight/admin.py)
