"""Event-log tables: batches and the archive manifest, failed events, and one typed table per kind.

Column reference for apps building on these tables: eventlogs/README.md.
"""

from __future__ import annotations

import uuid

from django.db import models


class Kind(models.TextChoices):
    LOL = "lol", "game (lol)"
    HOTEL = "hotel", "hotel web"
    RAID = "raid", "raid"
    AD = "ad", "ad"


class ArchiveFile(models.Model):
    """The manifest: one row per archive file (kind=/date=/hour=/<file>.ndjson.gz)."""

    kind = models.CharField(max_length=8, choices=Kind.choices)
    path = models.CharField(max_length=255, unique=True, help_text="Relative to EVENTLOG_ARCHIVE_DIR.")
    hour = models.DateTimeField(help_text="Start of the UTC hour the file holds.")
    records = models.BigIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    # Set when the hour is over and the file can no longer grow (eventlogs.seal_archive).
    sha256 = models.CharField(max_length=64, blank=True)
    sealed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-hour", "path"]
        indexes = [models.Index(fields=["kind", "hour"])]

    def __str__(self) -> str:
        return self.path


class Batch(models.Model):
    """One collector request: a gzip member of an archive file (`offset`, `length`), enriched once."""

    class Status(models.TextChoices):
        ARCHIVED = "archived"
        ENRICHED = "enriched"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    client = models.CharField(max_length=150, blank=True, help_text="The user whose token sent it.")
    received_at = models.DateTimeField()
    archive_file = models.ForeignKey(ArchiveFile, null=True, blank=True, on_delete=models.SET_NULL)
    offset = models.BigIntegerField()
    length = models.BigIntegerField()
    records = models.IntegerField(help_text="Lines in the batch (blank lines excluded).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ARCHIVED)
    enriched = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    duplicates = models.IntegerField(default=0, help_text="Records whose id came again later in the batch.")
    attempts = models.IntegerField(default=0)
    enriched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "batches"
        indexes = [
            models.Index(fields=["kind", "received_at"]),
            models.Index(fields=["status", "received_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


class FailedEvent(models.Model):
    """A record that could not be used, with why; recoverable (`manage.py recover_failed_events`)."""

    class Reason(models.TextChoices):
        INVALID_UTF8 = "invalid_utf8"
        INVALID_JSON = "invalid_json"
        NOT_AN_OBJECT = "not_an_object"
        TOO_LARGE = "too_large"
        SCHEMA = "schema"
        CONVERSION = "conversion"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="failures")
    line = models.IntegerField(help_text="0-based position of the record in its batch.")
    raw = models.TextField(help_text="The record as received (invalid UTF-8 shown with backslash escapes).")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    schema_path = models.CharField(
        max_length=255, blank=True, help_text="Where the schema failed, e.g. x or Boss.name."
    )
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.IntegerField(default=1)
    recovered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "line"]
        constraints = [models.UniqueConstraint(fields=["batch", "line"], name="eventlogs_failed_batch_line")]
        indexes = [models.Index(fields=["kind", "reason", "recovered_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.reason}: {self.message[:60]}"


class EventRecord(models.Model):
    """Columns every typed table has: the event id, its batch, event time, receive time, account."""

    event_id = models.UUIDField(primary_key=True)
    # No database constraint: its deferred check made a 1,000-row upsert 28 % slower (15.4 vs 12.0 ms), and
    # the rows are written in the transaction that marks their batch enriched. Deleting a batch still nulls
    # it (Django).
    batch = models.ForeignKey(
        Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    ts = models.DateTimeField(help_text="When the event happened (per kind: see eventlogs/README.md).")
    received_at = models.DateTimeField(help_text="When the collector received its batch.")
    account = models.CharField(max_length=64)

    objects = models.Manager()

    class Meta:
        abstract = True
        ordering = ["ts", "event_id"]

    def __str__(self) -> str:
        return f"{self.account} {self.ts:%Y-%m-%d %H:%M:%S} {self.event_id}"


class LolEvent(EventRecord):
    """Game log (`lol`): one action of a player; ts is the record's `datetime`."""

    method = models.CharField(max_length=16)
    ingametime = models.CharField(max_length=12, help_text='Game clock as sent, "m:s".')
    ingame_seconds = models.IntegerField()
    game_start = models.DateTimeField(help_text="ts - ingame_seconds - 1 s: a lower bound of the game's start.")
    ip = models.CharField(max_length=45)
    x = models.IntegerField(null=True)
    y = models.IntegerField(null=True)
    x_plus_y = models.IntegerField(null=True, help_text='The stored record\'s "x+y".')
    death_count = models.IntegerField()
    inputkey = models.CharField(max_length=16)
    champion = models.CharField(max_length=32)
    status = models.SmallIntegerField(help_text="0 alive, 1 dead.")
    buy_item = models.IntegerField(default=0, help_text="Items bought so far in this game (/getItem count).")

    class Meta(EventRecord.Meta):
        indexes = [
            models.Index(fields=["account", "ts"]),
            models.Index(fields=["ts"]),
            # buy_item counts an account's purchases in a time range: without it each count reads every row of
            # the game (~190 rows, 0.67 ms; 1,000-row batches spent 0.7 s there), with it at most 6 entries.
            models.Index(fields=["account", "ts"], condition=models.Q(method="/getItem"), name="eventlogs_lol_getitem"),
        ]


class HotelEvent(EventRecord):
    """Hotel web log (`hotel`): one page request; ts is the record's `datetime`."""

    method = models.CharField(max_length=128)
    ip = models.CharField(max_length=45)
    status = models.SmallIntegerField(help_text="1 once the user has booked.")
    gender = models.CharField(max_length=16)
    age = models.CharField(max_length=16, help_text='An age band as sent, e.g. "20-29".')
    buy_num = models.IntegerField(help_text="n of /buy/places/n, else 0.")
    click_num = models.IntegerField(help_text="n of /places/n, else 0.")
    category_subhome = models.CharField(  # noqa: DJ001 - NULL is the original's "null": no top-menu click
        max_length=32, null=True, help_text="Top-menu item clicked (the original key: catagory_subhome)."
    )

    class Meta(EventRecord.Meta):
        indexes = [models.Index(fields=["account", "ts"]), models.Index(fields=["ts"])]


class RaidEvent(EventRecord):
    """Raid log (`raid`): one action in a raid room; ts is startTime + gametime. Boss/User flattened."""

    session_id = models.UUIDField()
    start_time = models.DateTimeField(help_text="startTime (sent without a zone: read in TIME_ZONE).")
    gametime = models.CharField(max_length=12)
    gametime_seconds = models.IntegerField()
    success = models.BooleanField(help_text="The room's final outcome.")
    boss_name = models.CharField(max_length=32)
    boss_difficulty = models.IntegerField()
    boss_end_time = models.IntegerField(help_text="The time limit in seconds.")
    user_ip = models.CharField(max_length=45)
    user_class = models.CharField(max_length=32)
    method = models.CharField(max_length=16)
    x = models.IntegerField(null=True)
    y = models.IntegerField(null=True)
    inputkey = models.CharField(max_length=16)
    status = models.SmallIntegerField(help_text="1 once the player has died.")

    class Meta(EventRecord.Meta):
        indexes = [
            models.Index(fields=["account", "ts"]),
            models.Index(fields=["session_id", "ts"]),
            models.Index(fields=["ts"]),
        ]


class AdEvent(EventRecord):
    """Ad log (`ad`): one user's view or click of an ad; ts is the receive time (the record has none)."""

    ad_id = models.UUIDField()
    ad_name = models.CharField(max_length=200)
    ad_genre = models.CharField(max_length=32)
    ad_start_time = models.DateField()
    ad_end_time = models.DateField()
    ad_click_count = models.IntegerField()
    ad_viewing_time = models.IntegerField()
    ad_explain = models.TextField()
    user_view = models.BooleanField()
    user_click = models.BooleanField()
    user_gender = models.CharField(max_length=16)
    user_age = models.IntegerField()
    user_total_time = models.IntegerField()

    class Meta(EventRecord.Meta):
        # No index on ad_id: no query of the API, the detection or the exports filters on it.
        indexes = [models.Index(fields=["account", "ts"]), models.Index(fields=["ts"])]


TABLES: dict[str, type[EventRecord]] = {
    Kind.LOL: LolEvent,
    Kind.HOTEL: HotelEvent,
    Kind.RAID: RaidEvent,
    Kind.AD: AdEvent,
}

from .detection.models import AccountState, AccountWindow, ScoredWindow  # noqa: E402, F401 - behaviour detection
