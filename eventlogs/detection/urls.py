"""Behaviour detection's routes, included by eventlogs/urls.py under /api/v1/events/accounts/."""

from __future__ import annotations

from django.urls import URLPattern, path

from . import api

urlpatterns: list[URLPattern] = [
    path("", api.AccountListView.as_view(), name="events-accounts"),
    path("<str:kind>/<str:account>/", api.AccountDetailView.as_view(), name="events-account"),
]
