"""aiops' API: analyze, custom metrics (ingest, list, read), incidents (list, detail with members,
acknowledge, resolve). Views are thin: the rules and their messages live in aiops.services."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotAuthenticated, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from core.api.throttles import AnonThrottle, UserThrottle

from .models import Incident, MetricSeries
from .parsers import LimitedJSONParser
from .serializers import IncidentDetailSerializer, IncidentSerializer, MetricSeriesSerializer
from .services import alerts, analyze, incidents, metrics


class AnalyzeThrottle(SimpleRateThrottle):
    """analyze's own budget per user (or client address): it costs CPU, unlike a read."""

    scope = "aiops_analyze"

    def get_rate(self) -> str:
        return str(settings.AIOPS_ANALYZE_THROTTLE)

    def get_cache_key(self, request: Request, view: Any) -> str:
        ident = request.user.pk if request.user and request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def _time(raw: Any, field: str) -> datetime | None:
    if raw in (None, ""):
        return None
    try:
        return metrics.parse_timestamp(raw)
    except metrics.MetricsError as exc:
        raise ValidationError({field: str(exc)}) from exc


def _int(raw: Any, field: str, default: int | None) -> int | None:
    if raw in (None, ""):
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).lstrip("-").isdigit():
        raise ValidationError({field: f"{raw!r} is not an integer"})
    return int(raw)


def _analysis_input(body: dict[str, Any]) -> tuple[list[datetime], list[float]]:
    """A series given inline (timestamps + values) or by reference (metric + host/sensor/labels + range)."""
    if "metric" in body:
        if "values" in body or "timestamps" in body:
            raise analyze.AnalysisError("give either timestamps and values, or a metric reference, not both")
        end = _time(body.get("end"), "end") or timezone.now()
        start = _time(body.get("start"), "start") or end - timedelta(hours=24)
        labels = body.get("labels")
        try:
            labels = metrics.check_labels(labels) if labels is not None else None
        except metrics.MetricsError as exc:
            raise analyze.AnalysisError(str(exc)) from exc
        ref = analyze.Reference(
            metric=str(body["metric"]), start=start, end=end, host=body.get("host"), sensor=body.get("sensor"),
            labels=labels,
        )  # fmt: skip
        return analyze.load_reference(ref)
    timestamps, values = body.get("timestamps"), body.get("values")
    if not isinstance(timestamps, list) or not isinstance(values, list):
        raise analyze.AnalysisError("give timestamps and values (arrays), or a metric reference")
    if len(timestamps) > settings.AIOPS_ANALYZE_MAX_POINTS or len(values) > settings.AIOPS_ANALYZE_MAX_POINTS:
        raise analyze.AnalysisError(f"more than the limit of {settings.AIOPS_ANALYZE_MAX_POINTS} points")
    try:
        parsed_ts = [metrics.parse_timestamp(ts) for ts in timestamps]
    except metrics.MetricsError as exc:
        raise analyze.AnalysisError(f"timestamps: {exc}") from exc
    parsed = []
    for index, value in enumerate(values):
        try:
            parsed.append(metrics.parse_value(value))
        except metrics.MetricsError as exc:
            raise analyze.AnalysisError(f"values[{index}]: {exc}") from exc
    return parsed_ts, parsed


class AnalyzeView(APIView):
    """POST a series (`timestamps`, `values`) or a reference (`metric` `host.cpu_percent` + `host`, `sensor.flow`
    + `sensor`, or a custom metric + `labels`; `start`, `end`). Options: `methods` (anomaly detectors),
    `period` (points per season), `horizon` (forecast points), `clean_points` (episode gap)."""

    parser_classes = [LimitedJSONParser]
    throttle_classes = [AnonThrottle, UserThrottle, AnalyzeThrottle]

    @staticmethod
    def max_body_bytes() -> int:
        return int(settings.AIOPS_ANALYZE_MAX_BYTES)

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT, summary="Analyse one series")
    def post(self, request: Request) -> Response:
        body = request.data
        if not isinstance(body, dict):
            raise ValidationError("the body must be a JSON object")
        methods = body.get("methods", body.get("method", list(analyze.Options.methods)))
        methods = [methods] if isinstance(methods, str) else methods
        if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
            raise ValidationError({"methods": "a detector name or a non-empty list of them"})
        try:
            timestamps, values = _analysis_input(body)
            options = analyze.Options(
                methods=tuple(methods),
                period=_int(body.get("period"), "period", None),
                horizon=_int(body.get("horizon"), "horizon", 12) or 12,
                clean_points=_int(body.get("clean_points"), "clean_points", 1) or 1,
            )
            return Response(analyze.analyze(timestamps, values, options))
        except analyze.AnalysisError as exc:
            raise ValidationError(str(exc)) from exc


class MetricsView(APIView):
    """POST a batch of custom-metric points (all or nothing); GET the list of series (`name` filters)."""

    parser_classes = [LimitedJSONParser]

    @staticmethod
    def max_body_bytes() -> int:
        return int(settings.AIOPS_METRICS_MAX_POINTS) * 200  # a point is ~80-120 bytes of JSON

    @extend_schema(responses=MetricSeriesSerializer(many=True), summary="List custom series")
    def get(self, request: Request) -> Response:
        queryset = MetricSeries.objects.select_related("state")
        if name := request.query_params.get("name"):
            queryset = queryset.filter(name=name)
        return Response(MetricSeriesSerializer(queryset[:1000], many=True).data)

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT, summary="Ingest points")
    def post(self, request: Request) -> Response:
        try:
            stored = metrics.ingest(metrics.parse_batch(request.data))
        except metrics.MetricsError as exc:
            raise ValidationError(str(exc)) from exc
        return Response(stored, status=status.HTTP_201_CREATED)


class MetricsWithoutSlashView(MetricsView):
    """`POST /api/v1/aiops/metrics` as the issue spells it (POSTs are not redirected to the slash); the same
    endpoint, documented once."""

    schema = None


class MetricReadView(APIView):
    """Points of every series named `name` that carries `labels` (k=v,…), in [start, end], averaged per `step`."""

    @extend_schema(
        parameters=[
            OpenApiParameter("labels", str, description="k=v,k2=v2: series having these labels"),
            OpenApiParameter("start", OpenApiTypes.DATETIME),
            OpenApiParameter("end", OpenApiTypes.DATETIME),
            OpenApiParameter("step", int, description="seconds per averaged bucket (raw points without)"),
        ],
        responses=OpenApiTypes.OBJECT,
        summary="Read one custom metric",
    )
    def get(self, request: Request, name: str) -> Response:
        params = request.query_params
        try:
            labels = metrics.parse_label_filter(params.get("labels"))
            series = metrics.read_series(
                name, labels, _time(params.get("start"), "start"), _time(params.get("end"), "end"),
                _int(params.get("step"), "step", None),
            )  # fmt: skip
        except metrics.MetricsError as exc:
            raise ValidationError(str(exc)) from exc
        return Response({"name": name, "series": series})


class IncidentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Incidents, newest first; `status` filters. Reading is open; acknowledging and resolving need a login."""

    queryset = Incident.objects.annotate(member_count=Count("memberships")).select_related(
        "acknowledged_by", "resolved_by"
    )
    filterset_fields = ["status", "severity", "group_key"]

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return IncidentDetailSerializer if self.action != "list" else IncidentSerializer

    def get_queryset(self) -> QuerySet[Incident]:
        queryset = super().get_queryset()
        if self.action != "list":
            queryset = queryset.prefetch_related("memberships__event__sensor")
        return queryset

    def _transition(self, request: Request, change: Callable[[int, int | None], Incident]) -> Response:
        incident = self.get_object()
        try:
            change(incident.pk, request.user.pk)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        return Response(self.get_serializer(self.get_queryset().get(pk=incident.pk)).data)

    @extend_schema(request=None, summary="Acknowledge: an operator is on it (no more reminders)")
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        return self._transition(request, incidents.acknowledge)

    @extend_schema(request=None, summary="Resolve now, with every unresolved member")
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        return self._transition(request, incidents.resolve)


class AlertsView(APIView):
    """Alertmanager's webhook receiver (version 4): `Authorization: Bearer AIOPS_ALERTS_TOKEN` or basic auth
    with AIOPS_ALERTS_BASIC_USER/PASSWORD. Each alert becomes an anomaly event with source `alert`."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    parser_classes = [LimitedJSONParser]
    throttle_classes: list[type] = []  # Alertmanager retries on 429: throttling it would only delay alerts

    @staticmethod
    def max_body_bytes() -> int:
        return int(settings.AIOPS_ANALYZE_MAX_BYTES)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not alerts.authorized(request.META.get("HTTP_AUTHORIZATION", "")):
            raise NotAuthenticated("a valid bearer token or basic auth for the alerts receiver is required")

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="pipewatch-alerts"'

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT, summary="Alertmanager webhook")
    def post(self, request: Request) -> Response:
        try:
            archived = alerts.receive(request.data)
        except alerts.PayloadError as exc:
            raise ValidationError(str(exc)) from exc
        return Response({"payload": archived.pk, "alerts": archived.alerts})
