"""Admin for behaviour findings (registered from eventlogs/admin.py's import)."""

from __future__ import annotations

from django.contrib import admin

from .models import AccountState, AccountWindow, ScoredWindow, ScoringState


@admin.register(AccountState)
class AccountStateAdmin(admin.ModelAdmin):
    list_display = ["kind", "account", "group", "window_start", "score", "flagged", "first_flagged_at"]
    list_filter = ["kind", "flagged"]
    search_fields = ["account"]
    readonly_fields = ["kind", "account", "group", "window_start", "score", "flagged", "reasons", "first_flagged_at"]


@admin.register(AccountWindow)
class AccountWindowAdmin(admin.ModelAdmin):
    list_display = ["kind", "account", "window_start", "score", "flagged"]
    list_filter = ["kind", "flagged"]
    search_fields = ["account"]
    date_hierarchy = "window_start"
    readonly_fields = ["kind", "account", "window_start", "score", "flagged", "features", "reasons", "evidence"]


@admin.register(ScoredWindow)
class ScoredWindowAdmin(admin.ModelAdmin):
    list_display = ["kind", "window_start", "accounts", "flagged", "events", "duration_ms"]
    list_filter = ["kind"]
    readonly_fields = ["kind", "window_start", "accounts", "flagged", "events", "histograms", "bands", "duration_ms",
                       "created_at"]  # fmt: skip


@admin.register(ScoringState)
class ScoringStateAdmin(admin.ModelAdmin):
    list_display = ["kind", "window_start", "accounts", "updated_at"]
    readonly_fields = ["kind", "window_start", "accounts", "updated_at"]
    exclude = ["data"]
