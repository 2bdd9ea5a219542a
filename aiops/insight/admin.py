"""Insight rows in the admin: read-only (they are a record of what was answered, and at what cost)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.safestring import SafeString, mark_safe

from .models import Insight
from .schema import AnswerError, validate


@admin.register(Insight)
class InsightAdmin(admin.ModelAdmin):
    list_display = ["id", "incident", "source", "trigger", "model", "cause_code", "latency_ms", "calls", "short_error",
                    "created_at"]  # fmt: skip
    list_filter = ["source", "trigger", "cause_code"]
    search_fields = ["incident__title", "model", "error"]
    readonly_fields = [field.name for field in Insight._meta.fields] + ["rendered"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="error")
    def short_error(self, row: Insight) -> str:
        return row.error[:80]

    @admin.display(description="answer (escaped)")
    def rendered(self, row: Insight) -> SafeString | str:
        """The answer as operators see it: untrusted text, escaped by Answer.as_html."""
        try:
            return mark_safe(validate(row.answer).as_html()) if row.answer else "-"  # noqa: S308 - every piece escaped
        except AnswerError as exc:
            return f"not a conforming answer: {exc}"
