"""Behaviour detection's tables: each account's latest scored state, its per-window timeline, and the
scored windows themselves (whose existence makes scoring exactly-once per kind and minute)."""

from __future__ import annotations

from django.db import models


class ScoredWindow(models.Model):
    """One scored minute of one kind. Written in the same transaction as the account rows and events
    it caused; a window with a row is never scored again (idempotent re-runs of the beat task).
    `histograms` are the window's log10 histograms of the band quantities (speeds, click-to-book
    times, positions), added over the following windows' history to give the population bands."""

    kind = models.CharField(max_length=8)
    window_start = models.DateTimeField(help_text="Start of the minute (event time).")
    accounts = models.PositiveIntegerField(default=0)
    flagged = models.PositiveIntegerField(default=0)
    events = models.PositiveIntegerField(default=0)
    histograms = models.JSONField(default=dict)
    bands = models.JSONField(default=dict, help_text="The bands used: median and sigma of log10, samples.")
    duration_ms = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-window_start", "kind"]
        constraints = [models.UniqueConstraint(fields=["kind", "window_start"], name="eventlogs_scored_window_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.window_start:%Y-%m-%d %H:%M} ({self.flagged}/{self.accounts} flagged)"


class ScoringState(models.Model):
    """Every tracked account's evidence and carried context after the kind's latest scored window, as one
    Arrow table (Feather, LZ4) in one row per kind: the next window continues from it.

    One compact row instead of a row per account: rewriting 100,000 JSON rows every minute was most of a
    window's time (docs/BENCHMARKS.md). It is written in the same transaction as the window's
    ScoredWindow row, so the state always matches the last scored window."""

    kind = models.CharField(max_length=8, unique=True)
    window_start = models.DateTimeField(help_text="The scored minute this state follows.")
    accounts = models.PositiveIntegerField(default=0)
    data = models.BinaryField(help_text="Feather (Arrow IPC, LZ4) table: account, carried values, evidence.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.kind} after {self.window_start:%Y-%m-%d %H:%M} ({self.accounts} accounts)"


class AccountState(models.Model):
    """An account's latest notable scored window: its score and reasons. Written for an account while it
    scores REASON_SCORE or more or is flagged, and once more when it falls back below (so the row never
    claims an evidence the account no longer has); an account that never scored that high has no row."""

    kind = models.CharField(max_length=8)
    account = models.CharField(max_length=64)
    group = models.CharField(max_length=64, blank=True, help_text="The population it was compared with.")
    window_start = models.DateTimeField(help_text="Start of the latest scored minute the account was active in.")
    score = models.FloatField(default=0.0, help_text="-log10 of the chance a normal account shows as much.")
    flagged = models.BooleanField(default=False)
    reasons = models.JSONField(default=list, blank=True)
    first_flagged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["kind", "-score"]
        constraints = [models.UniqueConstraint(fields=["kind", "account"], name="eventlogs_account_state_unique")]
        indexes = [models.Index(fields=["kind", "flagged", "-score"], name="eventlogs_state_flag_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.account} {self.score:.1f}{' flagged' if self.flagged else ''}"


class AccountWindow(models.Model):
    """One account in one scored minute that carries information: a hit of a feature (a jump, an odd key,
    a rule broken, ...) or a score of REASON_SCORE or more. The window's counts, the score and the
    reasons. A quiet minute of an active account (no hit, score below REASON_SCORE) has no row: the
    timeline and the training rows rebuild its counts from the enriched table (services.quiet_windows)."""

    kind = models.CharField(max_length=8)
    account = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    score = models.FloatField(default=0.0)
    flagged = models.BooleanField(default=False)
    features = models.JSONField(default=dict, help_text="The window's counts and per-feature scores.")
    reasons = models.JSONField(default=list, blank=True)
    evidence = models.JSONField(default=dict, blank=True, help_text="Jumps and odd keys of a flagged window.")

    class Meta:
        ordering = ["kind", "account", "window_start"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "account", "window_start"], name="eventlogs_account_window_unique")
        ]
        indexes = [models.Index(fields=["kind", "window_start"], name="eventlogs_accwin_window_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.account} {self.window_start:%Y-%m-%d %H:%M} {self.score:.1f}"
