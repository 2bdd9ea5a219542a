"""The console's pages: one thin view per page, asking console.services for exactly what its template shows.

An htmx request (request.htmx) gets the page's live region only, a browser the whole page, at one URL.
Pages need the `console.view_console` permission (groups "viewer" and "operator"), actions
`console.operate_console` ("operator"): both checked here, a 403 page otherwise, never a hidden button only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from anomaly.models import AnomalyEvent, EventStatus, Severity, Source
from core.api.views import index as api_index
from forecasting.services import ForecastError
from sensors.models import Sensor

from .models import EventAction
from .services import charts, eventlogs, events, forecasts, harvest, hosts, overview, sensors

View = Callable[..., HttpResponse]


class HtmxRequest(HttpRequest):
    """What django-htmx's middleware makes of a request (typing only)."""

    htmx: HtmxDetails


VIEW = "console.view_console"
OPERATE = "console.operate_console"


def forbidden(request: HtmxRequest, needed: str) -> HttpResponse:
    return render(request, "console/403.html", {"needed": needed}, status=403)


def needs(permission: str) -> Callable[[View], View]:
    """Login (else the login page) and `permission` (else the 403 page) before the view runs."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HtmxRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.has_perm(permission):
                return forbidden(request, permission)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def page(request: HtmxRequest, template: str, partial: str, context: dict[str, Any]) -> HttpResponse:
    """The live region for htmx requests, the whole page otherwise."""
    can_operate = request.user.has_perm(OPERATE)
    return render(request, partial if request.htmx else template, {**context, "can_operate": can_operate})


def back(request: HtmxRequest, fallback: str) -> HttpResponseRedirect:
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
    return HttpResponseRedirect(target if safe and target else fallback)


def wants_html(request: HtmxRequest) -> bool:
    """A browser (text/html named in Accept and preferred to JSON); API clients and */* get the JSON index."""
    accept = request.headers.get("Accept", "")
    return "text/html" in accept and request.get_preferred_type(["application/json", "text/html"]) == "text/html"


def root(request: HtmxRequest) -> HttpResponse:
    """`/`: the overview for browsers, the API index for JSON clients (content negotiation on Accept)."""
    response = overview_page(request) if wants_html(request) else api_index(request)
    patch_vary_headers(response, ["Accept"])
    return response


@needs(VIEW)
@require_GET
def overview_page(request: HtmxRequest) -> HttpResponse:
    return page(request, "console/overview.html", "console/partials/overview_live.html", {"o": overview.overview()})


@needs(VIEW)
@require_GET
def health_panel(request: HtmxRequest) -> HttpResponse:
    checks = overview.health_checks()
    return render(
        request,
        "console/partials/health.html",
        {"checks": checks, "failing": [name for name, result in checks.items() if not result["ok"]]},
    )


@needs(VIEW)
@require_GET
def sensor_list(request: HtmxRequest) -> HttpResponse:
    table = sensors.sensor_table(
        request.GET.get("q", ""), request.GET.get("sort", "code"), _int(request.GET.get("page"), 1)
    )
    return page(request, "console/sensors.html", "console/partials/sensor_table.html", {"table": table})


@needs(VIEW)
@require_GET
def sensor_detail(request: HtmxRequest, code: str) -> HttpResponse:
    sensor = get_object_or_404(Sensor, code=code)
    range_key = request.GET.get("range", charts.DEFAULT_RANGE)
    range_key = range_key if range_key in charts.RANGES else charts.DEFAULT_RANGE
    detail = sensors.sensor_detail(sensor, charts.RANGES[range_key], range_key)
    context = {"d": detail, "ranges": list(charts.RANGES)}
    return page(request, "console/sensor_detail.html", "console/partials/sensor_live.html", context)


@needs(VIEW)
@require_GET
def event_list(request: HtmxRequest) -> HttpResponse:
    listing = events.event_list(request.GET, request.GET.get("page", 1))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "listing": listing,
        "query": query.urlencode(),
        "sources": Source.choices,
        "severities": Severity.choices,
        "statuses": EventStatus.choices,
        "TIME_ZONE": settings.TIME_ZONE,
    }
    return page(request, "console/events.html", "console/partials/event_list.html", context)


@needs(VIEW)
@require_GET
def event_detail(request: HtmxRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(AnomalyEvent.objects.select_related("sensor", "acknowledged_by", "resolved_by"), pk=pk)
    context = {
        "event": event,
        "chart": events.evidence_chart(event),
        "evidence": events.evidence_rows(event),
        "notes": events.notes(event),
        "insight": events.explanation(event),
    }
    return page(request, "console/event_detail.html", "console/partials/event_status.html", context)


@needs(OPERATE)
@require_POST
def event_explain(request: HtmxRequest, pk: int) -> HttpResponse:
    """Explain the event's incident now (rules at once, an LLM's answer later where one is configured)."""
    event = get_object_or_404(AnomalyEvent, pk=pk)
    _insight, llm = events.explain(event, request.user.get_username())
    if request.htmx:
        context = {"event": event, "insight": events.explanation(event), "llm": llm, "can_operate": True}
        return render(request, "console/partials/event_insight.html", context)
    return back(request, reverse("console:event", args=[pk]))


@needs(OPERATE)
@require_POST
def event_action(request: HtmxRequest, pk: int, action: str) -> HttpResponse:
    """Acknowledge or resolve with the note; htmx gets the updated row (list) or status panel (detail)."""
    get_object_or_404(AnomalyEvent, pk=pk)
    if action not in EventAction.values:
        raise Http404(f"no action {action!r}: acknowledge or resolve")
    error = ""
    try:
        events.act(pk, action, request.user.pk, request.POST.get("note", ""))
    except events.ActionError as exc:
        error = str(exc)
    event = AnomalyEvent.objects.select_related("sensor", "acknowledged_by", "resolved_by").get(pk=pk)
    if not request.htmx:
        return back(request, reverse("console:event", args=[pk]))
    template = "console/partials/event_row.html" if request.POST.get("from") == "list" else None
    context = {"event": event, "error": error, "can_operate": True, "notes": events.notes(event)}
    return render(request, template or "console/partials/event_status.html", context, status=409 if error else 200)


@needs(VIEW)
@require_GET
def forecast_page(request: HtmxRequest) -> HttpResponse:
    return page(
        request, "console/forecasts.html", "console/partials/forecast_live.html", {"f": forecasts.forecasts_page()}
    )


@needs(OPERATE)
@require_POST
def train_now(request: HtmxRequest) -> HttpResponse:
    try:
        forecasts.train_now(request.POST.getlist("metrics"), str(request.user), _int(request.POST.get("days"), 0))
    except ForecastError as exc:
        return render(request, "console/error.html", {"message": str(exc)}, status=400)
    return back(request, reverse("console:forecasts"))


@needs(VIEW)
@require_GET
def harvest_page(request: HtmxRequest) -> HttpResponse:
    return page(request, "console/harvest.html", "console/partials/harvest_live.html", {"h": harvest.harvest_page()})


@needs(OPERATE)
@require_POST
def harvest_start(request: HtmxRequest, organization_id: int) -> HttpResponse:
    get_object_or_404(harvest.Organization, pk=organization_id)
    try:
        harvest.start(organization_id, request.POST.getlist("kinds"))
    except ValueError as exc:
        return render(request, "console/error.html", {"message": str(exc)}, status=409)
    return back(request, reverse("console:harvest"))


@needs(VIEW)
@require_GET
def host_page(request: HtmxRequest) -> HttpResponse:
    data = hosts.hosts_page(request.GET.get("host"), request.GET.get("range", ""), request.GET.get("sort", "cpu"))
    context = {"p": data, "ranges": list(hosts.RANGES)}
    return page(request, "console/hosts.html", "console/partials/host_live.html", context)


@needs(VIEW)
@require_GET
def eventlog_page(request: HtmxRequest) -> HttpResponse:
    data = eventlogs.eventlogs_page(request.GET.get("kind", ""), request.GET.get("account", ""))
    return page(request, "console/eventlogs.html", "console/partials/eventlogs_live.html", {"e": data})


def _int(raw: Any, default: int) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return default
