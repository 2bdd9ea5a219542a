"""forecasting's admin: model versions (activate/deactivate), training runs (queue again), forecasts."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Forecast, ModelVersion, TrainingRun
from .services import registry, runs


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "metric", "status", "created_at", "activated_at", "sensors", "mae", "baseline_mae", "epochs"]
    list_filter = ["metric", "status"]
    readonly_fields = [field.name for field in ModelVersion._meta.fields]
    actions = ["activate_versions", "deactivate_versions"]

    @admin.action(description="Activate (serve this version for its metric)")
    def activate_versions(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        for metric in queryset.values_list("metric", flat=True).distinct():
            version = queryset.filter(metric=metric).order_by("-created_at").first()
            if version is None:
                continue
            try:
                registry.load(version)
            except registry.ArtifactError as exc:
                self.message_user(request, f"not activated: {exc}", messages.ERROR)
                continue
            registry.activate(version, f"activated by {request.user} in the admin")
            self.message_user(request, f"{version} now serves {metric}")

    @admin.action(description="Deactivate (fall back to seasonal naive)")
    def deactivate_versions(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        for version in queryset.filter(status=ModelVersion.Status.ACTIVE):
            registry.deactivate(version, f"deactivated by {request.user} in the admin")
            self.message_user(request, f"{version} deactivated; {version.metric} falls back to seasonal naive")


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "metrics", "status", "requested_by", "attempts", "queued_at", "started_at", "finished_at"]
    list_filter = ["status"]
    readonly_fields = [field.name for field in TrainingRun._meta.fields]
    actions = ["train_again"]

    @admin.action(description="Train again (a new run with the same options)")
    def train_again(self, request: HttpRequest, queryset: QuerySet[TrainingRun]) -> None:
        for run in queryset:
            new = runs.request_training(run.metrics, since=run.since, epochs=run.epochs, requested_by=str(request.user))
            self.message_user(request, f"queued run {new.pk}")


@admin.register(Forecast)
class ForecastAdmin(admin.ModelAdmin):
    list_display = ["sensor", "metric", "issued_at", "target", "value", "model_version"]
    list_filter = ["metric"]
    date_hierarchy = "issued_at"
    raw_id_fields = ["sensor", "model_version"]
