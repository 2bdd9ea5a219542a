"""monitoring's API routes, mounted under /api/v1/ (the seed's paths: no trailing slash)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from . import api
from .services.queries import SERIES

urlpatterns: list[URLPattern | URLResolver] = [
    path("metrics/current", api.CurrentView.as_view(), name="metrics-current"),
    path("metrics/processes", api.ProcessesView.as_view(), name="metrics-processes"),
    path("metrics/hosts", api.HostsView.as_view(), name="metrics-hosts"),
    *[path(f"metrics/{series}", api.series_view(series).as_view(), name=f"metrics-{series}") for series in SERIES],
]
