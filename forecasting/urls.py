"""forecasting's API routes, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver
from rest_framework.routers import DefaultRouter

from . import api

# "/?": `POST /api/v1/models/train` works with or without the slash (no redirect can carry a POST).
router = DefaultRouter(trailing_slash="/?")  # type: ignore[arg-type]  # DRF accepts a pattern here
router.include_root_view = False
router.register("forecasts", api.ForecastViewSet, basename="forecast")
router.register("models", api.ModelVersionViewSet, basename="modelversion")
router.register("training-runs", api.TrainingRunViewSet, basename="trainingrun")

urlpatterns: list[URLPattern | URLResolver] = list(router.urls)
