"""JSON errors for every path under /api/, whatever produced them (unknown URL, wrong method, DEBUG pages)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

ERRORS = {404: "not_found", 405: "method_not_allowed"}


class ApiJsonErrorsMiddleware:
    """Replaces a non-JSON 404/405 under /api/ (Django's HTML or DEBUG's technical page) by the API's JSON.

    DRF views already answer JSON; this covers what never reaches one: a path no URL pattern matches
    (with DEBUG on, Django renders its technical 404 and handler404 is not used) and plain Django views.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        error = ERRORS.get(response.status_code)
        if (
            error is None
            or not request.path.startswith("/api/")
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        if response.status_code == 404:
            message = f"No such path: {request.path}"
        else:
            message = f"Method {request.method} not allowed on {request.path}"
        replaced = JsonResponse({"error": error, "message": message}, status=response.status_code)
        if response.has_header("Allow"):
            replaced["Allow"] = response["Allow"]
        return replaced
