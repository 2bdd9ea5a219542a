"""JSON errors with a readable message, for DRF views and for plain Django 404/500 under /api/."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    """Validation details as `field: message` lines, however deeply DRF nested them."""
    if isinstance(detail, dict):
        return [line for key, value in detail.items() for line in _flatten(value, f"{prefix}{key}: ")]
    if isinstance(detail, list):
        return [line for item in detail for line in _flatten(item, prefix)]
    return [f"{prefix}{detail}"]


def json_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """`{"error": code, "message": readable text, "details": DRF's original detail}`."""
    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    code: str
    if isinstance(exc, ValidationError):
        code, message = "invalid", "; ".join(_flatten(detail))
    else:
        code = str(getattr(getattr(exc, "detail", None), "code", None) or getattr(exc, "default_code", "error"))
        message = str(detail.get("detail", detail)) if isinstance(detail, dict) else str(detail)
    response.data = {"error": code, "message": message, "details": detail}
    return response


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "not_found", "message": f"No such path: {request.path}"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "server_error", "message": "Internal error; it has been logged."}, status=500)
    return defaults.server_error(request)
