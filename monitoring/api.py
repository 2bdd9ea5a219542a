"""monitoring's API views: thin; validation lives in serializers, reads in services.queries.

/metrics/current has a hot path: the agent renders each host's snapshot once per sample (every 5 s), and a
plain request (JSON, at most a `host` that needs no cleaning) is answered with those bytes after DRF's
authentication, permission and throttle checks, skipping content negotiation, the query serializer and
the renderer. Anything else (the browsable API, `?format=`, an indent, a host to clean or refuse, no
snapshot in Redis) takes the full path, which answers the same JSON.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar, Literal

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.throttles import check_throttles_and_read

from .renderers import FastJSONRenderer
from .serializers import (
    HostQuerySerializer,
    HostSerializer,
    ProcessesResponseSerializer,
    ProcessQuerySerializer,
    SeriesQuerySerializer,
    SeriesResponseSerializer,
)
from .services import queries, store


def _query(serializer_class: type, request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)  # 400 {"error", "message", "details"} via core's handler
    return dict(serializer.validated_data)


def _unknown_host(host: str) -> NotFound:
    return NotFound(f"No host named {host!r}; GET /api/v1/metrics/hosts lists them.")


EXAMPLE_POINTS: dict[str, dict[str, Any]] = {
    "cpu": {"cpu_percent": 12.5, "load_1": 0.42, "load_5": 0.35, "load_15": 0.3, "cpu_per_core": [10.1, 14.9]},
    "memory": {
        "memory_percent": 41.2,
        "memory_used_bytes": 3_300_000_000,
        "memory_available_bytes": 4_700_000_000,
        "memory_total_bytes": 8_000_000_000,
        "swap_percent": 0.0,
        "swap_used_bytes": 0,
        "swap_total_bytes": 2_000_000_000,
    },
    "disk": {
        "disk_percent": 63.0,
        "disk_read_bytes_per_second": 10240.0,
        "disk_write_bytes_per_second": 51200.0,
        "disks": [
            {
                "mountpoint": "/",
                "device": "/dev/sda1",
                "fstype": "ext4",
                "total_bytes": 100_000_000_000,
                "used_bytes": 63_000_000_000,
                "free_bytes": 37_000_000_000,
                "percent": 63.0,
            }
        ],
    },
    "network": {
        "net_sent_bytes_per_second": 1500.0,
        "net_recv_bytes_per_second": 9800.0,
        "interfaces": {"eth0": {"bytes_sent": 123456, "bytes_recv": 654321, "sent_bytes_per_second": 1500.0}},
    },
}


PLAIN_ACCEPT = frozenset({"*/*", "application/json"})


def _plain_host(request: Request) -> str | Literal[False] | None:
    """The `host` of a query that has nothing else and that HostQuerySerializer would take as it is (None:
    no host); False when the serializer must see it (another parameter, a blank or untrimmed name, a NUL)."""
    params = request.query_params
    host = params.get("host")
    if len(params) != (host is not None) or (host is not None and (not host or host != host.strip() or "\0" in host)):
        return False
    return host


class MonitoringView(APIView):
    """JSON by orjson (the browsable API stays for people)."""

    renderer_classes = (FastJSONRenderer, BrowsableAPIRenderer)


class SeriesView(MonitoringView):
    """A host metric series over time (`series` is set per route)."""

    series: ClassVar[str] = ""

    def get(self, request: Request) -> Response:
        query = _query(SeriesQuerySerializer, request)
        try:
            results = queries.series_rows(
                self.series,
                host=query.get("host"),
                start=query.get("start"),
                end=query.get("end"),
                limit=query["limit"],
                step=query.get("step"),
                agg=query["agg"],
            )
        except queries.UnknownHostError as exc:
            raise _unknown_host(str(exc)) from exc
        step = query.get("step")
        body = {"series": self.series, "step": step, "agg": query["agg"] if step else None, "count": len(results)}
        return Response({**body, "results": results})


def series_view(series: str) -> type[SeriesView]:
    """The view for one series, with its own OpenAPI summary and examples."""
    raw = {"host": "web-1", "timestamp": "2026-05-01T09:00:05+09:00", **EXAMPLE_POINTS[series]}
    columns = queries.SERIES[series].columns
    bucket = {"host": "web-1", "timestamp": "2026-05-01T09:00:00+09:00", "samples": 60}
    downsampled = {**bucket, **{column: raw[column] for column in columns}}
    view = type(f"{series.title()}SeriesView", (SeriesView,), {"series": series})
    schema = extend_schema(
        summary=f"{series} history: raw samples or downsampled buckets",
        description=(
            f"The newest `limit` points of the {series} series in [start, end], oldest first. With `step` the "
            "database groups samples into buckets (avg or max per column, `samples` = how many); `1h` buckets "
            "come from the hourly roll-up where it has them (the same values; kept longer than the samples). "
            f"Per-device detail ({', '.join(queries.SERIES[series].detail) or 'none'}) is in raw samples only."
        ),
        parameters=[SeriesQuerySerializer],
        responses={200: SeriesResponseSerializer},
        examples=[
            OpenApiExample(
                "raw",
                value={"series": series, "step": None, "agg": None, "count": 1, "results": [raw]},
                response_only=True,
            ),
            OpenApiExample(
                "step=1m",
                value={"series": series, "step": "1m", "agg": "avg", "count": 1, "results": [downsampled]},
                response_only=True,
            ),
        ],
    )
    return schema(view)


class CurrentView(MonitoringView):
    snapshot: bytes | None = None  # the rendered body, read with the throttles' counters on the hot path

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        """JSON for a client that asks for JSON or anything (what DRF's negotiation picks then), decided
        without parsing the header; everything else is negotiated as usual."""
        if request.META.get("HTTP_ACCEPT", "*/*") in PLAIN_ACCEPT and "format" not in request.query_params:
            return FastJSONRenderer(), FastJSONRenderer.media_type
        return super().perform_content_negotiation(request, force)

    def check_throttles(self, request: Request) -> None:
        """On the hot path the throttles count and the agent's rendered snapshot is read in one round trip."""
        host = _plain_host(request) if request.accepted_media_type == FastJSONRenderer.media_type else False
        if host is False:
            super().check_throttles(request)
            return
        raw = check_throttles_and_read(self, request, partial(store.queue_snapshot_read, host=host))
        self.snapshot = store.snapshot_body(raw)

    @extend_schema(
        summary="Latest snapshot of a host: every metric",
        parameters=[HostQuerySerializer],
        responses={200: OpenApiTypes.OBJECT},
        examples=[
            OpenApiExample(
                "snapshot",
                value={
                    "host": "web-1",
                    "timestamp": "2026-05-01T00:00:05+00:00",
                    "interval_seconds": 5.0,
                    **{key: value for point in EXAMPLE_POINTS.values() for key, value in point.items()},
                    "source": "agent",
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> HttpResponse:
        if self.snapshot is not None:
            return HttpResponse(self.snapshot, content_type=FastJSONRenderer.media_type)
        host = _query(HostQuerySerializer, request).get("host")
        try:
            snapshot = queries.current_snapshot(host)
        except queries.UnknownHostError as exc:
            raise _unknown_host(str(exc)) from exc
        if snapshot is None:
            raise NotFound("No host has reported yet: start `manage.py host_agent`.")
        return Response(snapshot)


class ProcessesView(MonitoringView):
    @extend_schema(
        summary="Busiest processes of a host, by CPU or memory",
        parameters=[ProcessQuerySerializer],
        responses={200: ProcessesResponseSerializer},
    )
    def get(self, request: Request) -> Response:
        query = _query(ProcessQuerySerializer, request)
        document = queries.top_processes(query.get("host"), query["sort_by"], query["limit"])
        if document is None:
            raise NotFound("No process list: is the host agent running on that host?")
        return Response(document)


class HostsView(MonitoringView):
    @extend_schema(
        summary="Hosts running an agent, and whether each is reporting", responses={200: HostSerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        return Response(HostSerializer(queries.hosts(), many=True).data)
