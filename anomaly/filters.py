"""Query filters for the anomaly API; bad values become a 400 with a readable message."""

from __future__ import annotations

from django.db.models import Max, Q, QuerySet
from django_filters import rest_framework as filters

from sensors.models import Metric

from .models import AnomalyEvent, Criteria, CriteriaSource, DetectionResult, EventStatus, Severity


class AnomalyEventFilter(filters.FilterSet):
    sensor = filters.CharFilter(field_name="sensor__code", help_text="sensor code, e.g. 001")
    subject = filters.CharFilter()
    source = filters.CharFilter()
    metric = filters.CharFilter()
    method = filters.CharFilter()
    severity = filters.ChoiceFilter(choices=Severity.choices)
    status = filters.ChoiceFilter(choices=EventStatus.choices)
    start = filters.IsoDateTimeFilter(method="filter_start", help_text="events still going at or after this time")
    end = filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="lte", help_text="events started by then")
    open = filters.BooleanFilter(method="filter_open", help_text="true: not resolved; false: resolved")
    replayed = filters.BooleanFilter(help_text="true: found by replay_detection over history; false: live")

    class Meta:
        model = AnomalyEvent
        fields: list[str] = []

    def filter_start(self, queryset: QuerySet[AnomalyEvent], name: str, value: object) -> QuerySet[AnomalyEvent]:
        return queryset.filter(Q(ended_at__isnull=True) | Q(ended_at__gte=value))

    def filter_open(self, queryset: QuerySet[AnomalyEvent], name: str, value: bool | None) -> QuerySet[AnomalyEvent]:
        if value is None:
            return queryset
        resolved = Q(status=EventStatus.RESOLVED)
        return queryset.exclude(resolved) if value else queryset.filter(resolved)


class CriteriaFilter(filters.FilterSet):
    sensor = filters.CharFilter(field_name="sensor__code", help_text="sensor code")
    metric = filters.ChoiceFilter(choices=Metric.choices)
    hour = filters.NumberFilter()
    weekend = filters.BooleanFilter()
    version = filters.NumberFilter(field_name="version_id")
    history = filters.BooleanFilter(method="filter_history", help_text="true: every version; default: the newest")

    class Meta:
        model = Criteria
        fields: list[str] = []

    def filter_queryset(self, queryset: QuerySet[Criteria]) -> QuerySet[Criteria]:
        queryset = super().filter_queryset(queryset)
        if self.form.cleaned_data.get("history") or self.form.cleaned_data.get("version") is not None:
            return queryset
        queryset = queryset.exclude(version__source=CriteriaSource.REPLAY)  # a replay's criteria judge history only
        newest = (
            queryset.order_by()
            .values("sensor_id")
            .annotate(newest=Max("version_id"))
            .values_list("sensor_id", "newest")
        )
        pairs = Q()
        for sensor_id, version_id in newest:
            pairs |= Q(sensor_id=sensor_id, version_id=version_id)
        return queryset.filter(pairs) if pairs else queryset.none()

    def filter_history(self, queryset: QuerySet[Criteria], name: str, value: bool | None) -> QuerySet[Criteria]:
        return queryset  # applied in filter_queryset, which sees every parameter


class DetectionResultFilter(filters.FilterSet):
    sensor = filters.CharFilter(field_name="sensor__code", help_text="sensor code, e.g. 001")
    start = filters.IsoDateTimeFilter(field_name="minute", lookup_expr="gte", help_text="inclusive")
    end = filters.IsoDateTimeFilter(field_name="minute", lookup_expr="lt", help_text="exclusive")
    fired = filters.BooleanFilter(method="filter_fired", help_text="true: some method fired; false: none")

    class Meta:
        model = DetectionResult
        fields: list[str] = []

    def filter_fired(
        self, queryset: QuerySet[DetectionResult], name: str, value: bool | None
    ) -> QuerySet[DetectionResult]:
        if value is None:
            return queryset
        quiet = Q(flow_fired__in=["0000", ""]) & Q(pressure_fired__in=["000", ""])
        return queryset.exclude(quiet) if value else queryset.filter(quiet)
