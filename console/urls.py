"""The console's URLs, mounted at the site root (core/urls.py): every page is a URL a colleague can be sent."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import URLPattern, path

from . import views

app_name = "console"

urlpatterns: list[URLPattern] = [
    path("", views.root, name="overview"),
    path("console/health/", views.health_panel, name="health"),
    path("sensors/", views.sensor_list, name="sensors"),
    path("sensors/<str:code>/", views.sensor_detail, name="sensor"),
    path("events/", views.event_list, name="events"),
    path("events/<int:pk>/", views.event_detail, name="event"),
    path("events/<int:pk>/explain/", views.event_explain, name="event-explain"),
    path("events/<int:pk>/<str:action>/", views.event_action, name="event-action"),
    path("forecasts/", views.forecast_page, name="forecasts"),
    path("forecasts/train/", views.train_now, name="train"),
    path("harvest/", views.harvest_page, name="harvest"),
    path("harvest/<int:organization_id>/start/", views.harvest_start, name="harvest-start"),
    path("hosts/", views.host_page, name="hosts"),
    path("eventlogs/", views.eventlog_page, name="eventlogs"),
    path("login/", auth_views.LoginView.as_view(template_name="console/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
