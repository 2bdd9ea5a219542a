"""ingest's admin: organisations (with a harvest action), rights (search, filters, CSV export), runs."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse

from . import services
from .exporting import csv_response
from .models import Applicant, HarvestCheckpoint, HarvestRun, IPRight, Organization, RightOwner


class ApplicantInline(admin.TabularInline):
    model = Applicant
    extra = 0
    fields = ["number", "name", "first_seen", "last_seen"]
    readonly_fields = ["first_seen", "last_seen"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "org_type", "business_number", "corporate_number", "active", "applicants_resolved_at"]
    list_filter = ["org_type", "active"]
    search_fields = ["name", "business_number", "corporate_number", "applicants__number"]
    inlines = [ApplicantInline]
    actions = ["harvest"]

    @admin.action(description="Harvest KIPRIS for the selected organisations")
    def harvest(self, request: HttpRequest, queryset: QuerySet[Organization]) -> None:
        runs = services.start_harvests(list(queryset.values_list("pk", flat=True)))
        queued = sum(run is not None for run in runs)
        self.message_user(
            request,
            f"queued {queued} harvest run(s); {len(runs) - queued} already had one queued or running",
            messages.SUCCESS,
        )


class RightOwnerInline(admin.TabularInline):
    model = RightOwner
    extra = 0
    raw_id_fields = ["organization", "applicant"]
    readonly_fields = ["first_seen", "last_seen"]


@admin.register(IPRight)
class IPRightAdmin(admin.ModelAdmin):
    list_display = [
        "application_number",
        "design_number",
        "kind",
        "title",
        "status",
        "application_date",
        "owner_names",
    ]
    list_filter = ["kind", "status", "organizations__org_type", "application_date"]
    search_fields = ["application_number", "registration_number", "title", "organizations__name"]
    date_hierarchy = "application_date"
    readonly_fields = ["raw", "first_seen", "last_seen", "last_changed"]
    inlines = [RightOwnerInline]
    actions = ["export_csv"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[IPRight]:
        return super().get_queryset(request).prefetch_related("organizations")

    @admin.display(description="owners")
    def owner_names(self, right: IPRight) -> str:
        return ", ".join(organization.name for organization in right.organizations.all())

    @admin.action(description="Export the selected rights to CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[IPRight]) -> StreamingHttpResponse:
        return csv_response(queryset)


class CheckpointInline(admin.TabularInline):
    model = HarvestCheckpoint
    extra = 0
    can_delete = False
    fields = ("applicant", "kind", "status", "next_page", "fetched", "total", "error")
    readonly_fields = fields


@admin.register(HarvestRun)
class HarvestRunAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "status", "requests", "errors", "created_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["organization__name", "error"]
    raw_id_fields = ["organization"]
    inlines = [CheckpointInline]
