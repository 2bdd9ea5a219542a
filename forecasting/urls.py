"""forecasting's API routes, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("forecasts", api.ForecastViewSet, basename="forecast")
router.register("models", api.ModelVersionViewSet, basename="modelversion")
router.register("training-runs", api.TrainingRunViewSet, basename="trainingrun")

# `POST /api/v1/models/train` as documented, without the slash too: no redirect can carry a POST body.
# (schema=None: the documented route is the router's; this alias stays out of the OpenAPI schema.)
train_without_slash = api.ModelVersionViewSet.as_view(
    {"post": "train"}, **{**api.ModelVersionViewSet.train.kwargs, "detail": False, "schema": None}
)

urlpatterns: list[URLPattern | URLResolver] = [
    path("models/train", train_without_slash, name="modelversion-train-no-slash"),
    *router.urls,
]
