"""anomaly's API: events (list, detail, acknowledge, resolve) and criteria (current and history)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from . import events
from .filters import AnomalyEventFilter, CriteriaFilter, DetectionResultFilter
from .models import AnomalyEvent, Criteria, CriteriaVersion, DetectionResult
from .serializers import (
    AnomalyEventSerializer,
    CriteriaSerializer,
    CriteriaVersionSerializer,
    DetectionResultSerializer,
)


class AnomalyEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Anomaly events of sensors and hosts, newest first. Reading is open; acknowledging and resolving need a login."""

    queryset = AnomalyEvent.objects.select_related("sensor", "acknowledged_by", "resolved_by")
    serializer_class = AnomalyEventSerializer
    filterset_class = AnomalyEventFilter

    def _transition(self, request: Request, change: events.Transition) -> Response:
        event = self.get_object()
        try:
            event = change(event.pk, request.user.pk)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        return Response(self.get_serializer(event).data)

    @extend_schema(request=None, summary="Acknowledge: an operator is on it (the event still closes on its own)")
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        return self._transition(request, events.acknowledge)

    @extend_schema(request=None, summary="Resolve now (a method still firing opens a new event)")
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        return self._transition(request, events.resolve)


class CriteriaViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Criteria rows: by default each sensor's newest version; `history=true` or `version=N` for others."""

    queryset = Criteria.objects.select_related("sensor", "version").order_by(
        "sensor__code", "metric", "-version_id", "weekend", "hour"
    )
    serializer_class = CriteriaSerializer
    filterset_class = CriteriaFilter


class CriteriaVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Criteria versions: which data, which period, which parameters."""

    queryset = CriteriaVersion.objects.all()
    serializer_class = CriteriaVersionSerializer


class DetectionResultViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Per sensor-minute detection results (30 days): why a minute was or was not flagged, oldest first."""

    queryset = DetectionResult.objects.select_related("sensor").order_by("minute", "sensor__code")
    serializer_class = DetectionResultSerializer
    filterset_class = DetectionResultFilter
