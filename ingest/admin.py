"""ingest's admin: organisations (with a harvest action), rights (search, filters, CSV export), runs."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse

from . import services
from .exporting import csv_response
from .models import Applicant, HarvestCheckpoint, HarvestRun, IPRight, Organization


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
        from .tasks import queue_run

        with transaction.atomic():
            for organization in queryset:
                run = services.create_run(organization.pk)
                queue_run(run.pk)
        self.message_user(request, f"queued {queryset.count()} harvest run(s)", messages.SUCCESS)


@admin.register(IPRight)
class IPRightAdmin(admin.ModelAdmin):
    list_display = [
        "application_number",
        "design_number",
        "kind",
        "title",
        "status",
        "application_date",
        "organization",
    ]
    list_filter = ["kind", "status", "organization__org_type", "application_date"]
    search_fields = ["application_number", "registration_number", "title", "organization__name"]
    list_select_related = ["organization"]
    date_hierarchy = "application_date"
    readonly_fields = ["raw", "first_seen", "last_seen", "last_changed"]
    raw_id_fields = ["organization", "applicant"]
    actions = ["export_csv"]

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
