"""core's API: the index, health, Prometheus metrics and the beat schedules."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django_celery_beat.models import PeriodicTask
from drf_spectacular.utils import extend_schema, inline_serializer
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from .. import __version__, health, metrics
from .serializers import HealthSerializer, ScheduleSerializer


@extend_schema(
    summary="API index: name, version and links",
    responses=inline_serializer(
        "Index",
        {"name": serializers.CharField(), "version": serializers.CharField(), "links": serializers.DictField()},
    ),
)
@api_view(["GET"])
@permission_classes([AllowAny])
def index(request: Request) -> Response:
    links = {
        "health": "api-health",
        "schema": "schema",
        "docs": "swagger-ui",
        "redoc": "redoc",
        "admin": "admin:index",
        "metrics": "metrics",
        "schedules": "schedule-list",
    }
    return Response(
        {
            "name": "pipewatch",
            "version": __version__,
            "links": {name: request.build_absolute_uri(reverse(url)) for name, url in links.items()},
        }
    )


@extend_schema(summary="Health of every component", responses={200: HealthSerializer, 503: HealthSerializer})
@api_view(["GET"])
@permission_classes([AllowAny])
@throttle_classes([])
def health_view(request: Request) -> Response:
    """200 when every registered check passes; 503 naming the failing ones otherwise."""
    checks = health.run_all()
    failing = [name for name, result in checks.items() if not result["ok"]]
    body = {"status": "failing" if failing else "ok", "failing": failing, "checks": checks}
    return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE if failing else status.HTTP_200_OK)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition for every process on this host (multiprocess mode)."""
    return HttpResponse(metrics.render_latest(), content_type=CONTENT_TYPE_LATEST)


class ScheduleViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    """Beat schedules: list them, pause/resume (`enabled`), or run one now."""

    queryset = PeriodicTask.objects.select_related("crontab", "interval").order_by("name")
    serializer_class = ScheduleSerializer
    http_method_names = ["get", "patch", "post", "head", "options"]

    @extend_schema(request=None, responses={202: None}, summary="Queue the schedule's task now")
    @action(detail=True, methods=["post"])
    def run(self, request: Request, pk: str | None = None) -> Response:
        from ..periodic import run_now

        task_id = run_now(self.get_object())
        return Response({"task_id": task_id}, status=status.HTTP_202_ACCEPTED)
