"""ingest's tables: tracked organisations, their KIPRIS applicant numbers, the rights found, harvest runs."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from .identifiers import InvalidNumberError, normalize_business_number, normalize_corporate_number


class OrgType(models.TextChoices):
    COMPANY = "company", "company"
    UNIVERSITY = "university", "university"


class Organization(models.Model):
    """A company or university whose rights are harvested; at least one registration number finds it."""

    name = models.CharField(max_length=200, db_index=True)
    org_type = models.CharField(max_length=10, choices=OrgType.choices, default=OrgType.COMPANY)
    # Stored normalised (`XXX-XX-XXXXX`, `XXXXXX-XXXXXXX`), the form KIPRIS expects; empty when unknown.
    business_number = models.CharField(max_length=12, blank=True, default="", db_index=True)
    corporate_number = models.CharField(max_length=14, blank=True, default="", db_index=True)
    active = models.BooleanField(default=True, help_text="Harvested by the periodic refresh.")
    applicants_resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["business_number"], condition=~Q(business_number=""), name="ingest_org_unique_business"
            ),
            models.UniqueConstraint(
                fields=["corporate_number"], condition=~Q(corporate_number=""), name="ingest_org_unique_corporate"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.clean()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        for field, normalize in (
            ("business_number", normalize_business_number),
            ("corporate_number", normalize_corporate_number),
        ):
            value = getattr(self, field).strip()
            try:
                setattr(self, field, normalize(value) if value else "")
            except InvalidNumberError as exc:
                errors[field] = str(exc)
        if not errors and not self.business_number and not self.corporate_number:
            errors["business_number"] = "give a business registration number or a corporate number"
        if errors:
            raise ValidationError(errors)


class Applicant(models.Model):
    """One 특허고객번호 of an organisation (a company may file under several)."""

    number = models.CharField(max_length=12, unique=True)
    name = models.CharField(max_length=200, blank=True, default="")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="applicants")
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"


class IPRKind(models.TextChoices):
    PATENT = "patent", "patent"
    UTILITY = "utility", "utility model"
    DESIGN = "design", "design"
    TRADEMARK = "trademark", "trademark"


class IPRight(models.Model):
    """One right as KIPRIS reports it; upserted on (kind, application number, design number)."""

    kind = models.CharField(max_length=10, choices=IPRKind.choices)
    application_number = models.CharField(max_length=20)
    # Designs: one row per design of a multi-design application (`M001`); empty for other kinds.
    design_number = models.CharField(max_length=20, blank=True, default="")
    application_date = models.DateField(null=True, blank=True)
    title = models.TextField(blank=True, default="")
    status = models.CharField(max_length=40, blank=True, default="", db_index=True)
    registration_number = models.CharField(max_length=20, blank=True, default="")
    registration_date = models.DateField(null=True, blank=True)
    publication_number = models.CharField(max_length=20, blank=True, default="")
    publication_date = models.DateField(null=True, blank=True)
    open_number = models.CharField(max_length=20, blank=True, default="")
    open_date = models.DateField(null=True, blank=True)
    ipc_codes = models.JSONField(default=list, blank=True)
    nice_classes = models.JSONField(default=list, blank=True)
    vienna_codes = models.JSONField(default=list, blank=True)
    applicant_names = models.JSONField(default=list, blank=True)
    agent = models.CharField(max_length=200, blank=True, default="")
    abstract = models.TextField(blank=True, default="")
    image_url = models.URLField(max_length=500, blank=True, default="")
    raw = models.JSONField(default=dict, help_text="The record exactly as KIPRIS sent it.")
    # Every tracked organisation whose search found it: a right filed jointly (a company and a
    # university) belongs to both, each with the applicant number its search found it under.
    organizations: models.ManyToManyField[Organization, RightOwner] = models.ManyToManyField(
        Organization, through="RightOwner", related_name="rights"
    )
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    last_changed = models.DateTimeField()

    class Meta:
        ordering = ["-application_date", "application_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "application_number", "design_number"], name="ingest_ipright_natural_key"
            )
        ]
        indexes = [models.Index(fields=["kind", "application_date"], name="ingest_ipright_kind_date")]

    def __str__(self) -> str:
        return f"{self.kind} {self.application_number}{self.design_number}"


class RightOwner(models.Model):
    """A right held by a tracked organisation, and the applicant number under which its search found it."""

    right = models.ForeignKey(IPRight, on_delete=models.CASCADE, related_name="owners")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="ownerships")
    applicant = models.ForeignKey(Applicant, on_delete=models.SET_NULL, null=True, related_name="ownerships")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["right", "organization"]
        constraints = [models.UniqueConstraint(fields=["right", "organization"], name="ingest_right_owner_unique")]

    def __str__(self) -> str:
        return f"{self.right_id} held by {self.organization_id}"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"
    # Stopped on purpose (budget nearly used, KIPRIS quota, circuit open); resumable.
    PAUSED = "paused", "paused"


class HarvestRun(models.Model):
    """One harvest of one organisation: what was asked, how it went, what it found."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="runs")
    kinds = models.JSONField(default=list, help_text="Searches run: patent (with utility), design, trademark.")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    error = models.TextField(blank=True, default="")
    # The run's own calls (the applicant lookup); its checkpoints count theirs (see services.run_totals).
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.organization_id} ({self.status})"


class SearchKind(models.TextChoices):
    """The three per-applicant searches (patents and utility models come from one search)."""

    PATENT = "patent", "patent + utility"
    DESIGN = "design", "design"
    TRADEMARK = "trademark", "trademark"


class HarvestCheckpoint(models.Model):
    """Progress of one search for one applicant number: the page to fetch next, so a crash resumes there."""

    run = models.ForeignKey(HarvestRun, on_delete=models.CASCADE, related_name="checkpoints")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="checkpoints")
    applicant = models.ForeignKey(Applicant, on_delete=models.CASCADE, related_name="checkpoints")
    kind = models.CharField(max_length=10, choices=SearchKind.choices)
    next_page = models.PositiveIntegerField(default=1)
    fetched = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    error = models.TextField(blank=True, default="")
    # Counted here, not on the run: parallel page tasks of one run never contend for one row.
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    # {"patent": {"new": 3, "updated": 1, "unchanged": 7}, "utility": {...}, "skipped_rows": 0}
    stats = models.JSONField(default=dict, blank=True)
    # A lease instead of a lock: a worker killed mid-batch leaves it to expire, so another may resume.
    lease_token = models.CharField(max_length=36, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "applicant", "kind"], name="ingest_checkpoint_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.applicant_id}/{self.kind} page {self.next_page} ({self.status})"
