"""Prometheus metrics for every web request: count, latency, in-flight, and the database time inside.

Views are labelled by their URL pattern name (bounded cardinality), never by raw path; requests that
match no route share one label.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from django.db import connections
from django.http import HttpRequest, HttpResponse

from . import metrics

UNMATCHED = "<unmatched>"


def _view_label(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED
    return match.view_name or match.route or UNMATCHED


class _QueryTimer:
    """A database execute wrapper: counts and times each query of the request."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        except Exception:
            metrics.DB_ERRORS.labels(alias=self.alias).inc()
            raise
        finally:
            metrics.DB_QUERIES.labels(alias=self.alias).inc()
            metrics.DB_QUERY_SECONDS.labels(alias=self.alias).observe(time.perf_counter() - started)


class PrometheusMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        metrics.HTTP_IN_PROGRESS.inc()
        try:
            with ExitStack() as stack:
                for alias in connections:
                    stack.enter_context(connections[alias].execute_wrapper(_QueryTimer(alias)))
                response = self.get_response(request)
        finally:
            metrics.HTTP_IN_PROGRESS.dec()
        view = _view_label(request)
        metrics.HTTP_LATENCY.labels(view=view, method=request.method or "").observe(time.perf_counter() - started)
        metrics.HTTP_REQUESTS.labels(view=view, method=request.method or "", status=str(response.status_code)).inc()
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        metrics.HTTP_EXCEPTIONS.labels(view=_view_label(request)).inc()
