"""eventlogs' API routes, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from . import api

urlpatterns: list[URLPattern | URLResolver] = [
    path("events/accounts/", include("eventlogs.detection.urls")),  # behaviour detection (before <kind>)
    path("events/stats", api.StatsView.as_view(), name="events-stats"),
    path("events/failed/", api.FailedEventsView.as_view(), name="events-failed"),
    *[path(f"events/{kind}/", view.as_view(), name=f"events-{kind}") for kind, view in api.KIND_VIEWS.items()],
    path("events/<str:kind>/", api.UnknownKindView.as_view(), name="events-unknown"),
]
