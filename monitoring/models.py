"""monitoring's tables: the hosts that run an agent, their periodic samples and the samples' hourly roll-up."""

from __future__ import annotations

from django.db import models


class Host(models.Model):
    """A machine running `manage.py host_agent`; deactivate it in the admin when it is retired."""

    name = models.CharField(max_length=255, unique=True)
    active = models.BooleanField(default=True, help_text="inactive hosts are not expected to report")
    cpu_count = models.PositiveIntegerField(default=0)
    memory_total_bytes = models.BigIntegerField(default=0)
    platform = models.CharField(max_length=200, blank=True)
    boot_time = models.DateTimeField(null=True, blank=True)
    interval_seconds = models.FloatField(default=5.0, help_text="the agent's sampling interval")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, help_text="newest sample stored in the database")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class HostSample(models.Model):
    """One sample of one host: scalar columns for charts and downsampling, JSON for per-device detail.

    Rates are per second over the interval since the previous sample; the fullest mount is `disk_percent`.
    """

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="samples")
    ts = models.DateTimeField(help_text="when the sample was taken (timezone-aware)")
    cpu_percent = models.FloatField()
    cpu_per_core = models.JSONField(default=list, help_text="busy percent of every logical CPU")
    load_1 = models.FloatField()
    load_5 = models.FloatField()
    load_15 = models.FloatField()
    memory_total_bytes = models.BigIntegerField()
    memory_used_bytes = models.BigIntegerField()
    memory_available_bytes = models.BigIntegerField()
    memory_percent = models.FloatField()
    swap_total_bytes = models.BigIntegerField()
    swap_used_bytes = models.BigIntegerField()
    swap_percent = models.FloatField()
    disk_percent = models.FloatField(help_text="usage of the fullest mount")
    disk_read_bytes_per_second = models.FloatField()
    disk_write_bytes_per_second = models.FloatField()
    disks = models.JSONField(default=list, help_text="per mount: mountpoint, device, fstype, bytes, percent")
    net_sent_bytes_per_second = models.FloatField()
    net_recv_bytes_per_second = models.FloatField()
    interfaces = models.JSONField(default=dict, help_text="per interface: counters and rates")

    class Meta:
        ordering = ["host", "ts"]
        # The unique index (host, ts) serves every range query; re-inserting a sample is a no-op.
        constraints = [models.UniqueConstraint(fields=["host", "ts"], name="hostsample_unique_host_ts")]
        indexes = [models.Index(fields=["ts"], name="hostsample_ts_idx")]

    def __str__(self) -> str:
        return f"{self.host_id}@{self.ts:%Y-%m-%d %H:%M:%S}"


class HostHour(models.Model):
    """One host's hour: the mean and the max of every scalar column of its samples, and how many there were.

    Rolled up incrementally by a beat task (services.rollup). Charts and `step=1h` series over days read
    168 rows a week per host here instead of 121 k samples. Kept longer than the samples
    (MONITORING_ROLLUP_RETENTION_DAYS). Byte counts keep their type in the max; their mean is a float, as
    the database's average of the samples is.
    """

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField(help_text="start of the hour (UTC)")
    samples = models.PositiveIntegerField(help_text="samples behind the aggregates")
    cpu_percent_avg = models.FloatField()
    cpu_percent_max = models.FloatField()
    load_1_avg = models.FloatField()
    load_1_max = models.FloatField()
    load_5_avg = models.FloatField()
    load_5_max = models.FloatField()
    load_15_avg = models.FloatField()
    load_15_max = models.FloatField()
    memory_percent_avg = models.FloatField()
    memory_percent_max = models.FloatField()
    memory_used_bytes_avg = models.FloatField()
    memory_used_bytes_max = models.BigIntegerField()
    memory_available_bytes_avg = models.FloatField()
    memory_available_bytes_max = models.BigIntegerField()
    memory_total_bytes_avg = models.FloatField()
    memory_total_bytes_max = models.BigIntegerField()
    swap_percent_avg = models.FloatField()
    swap_percent_max = models.FloatField()
    swap_used_bytes_avg = models.FloatField()
    swap_used_bytes_max = models.BigIntegerField()
    swap_total_bytes_avg = models.FloatField()
    swap_total_bytes_max = models.BigIntegerField()
    disk_percent_avg = models.FloatField()
    disk_percent_max = models.FloatField()
    disk_read_bytes_per_second_avg = models.FloatField()
    disk_read_bytes_per_second_max = models.FloatField()
    disk_write_bytes_per_second_avg = models.FloatField()
    disk_write_bytes_per_second_max = models.FloatField()
    net_sent_bytes_per_second_avg = models.FloatField()
    net_sent_bytes_per_second_max = models.FloatField()
    net_recv_bytes_per_second_avg = models.FloatField()
    net_recv_bytes_per_second_max = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["host", "hour"], name="hosthour_unique_host_hour")]
        indexes = [models.Index(fields=["hour"], name="hosthour_hour_idx")]

    def __str__(self) -> str:
        return f"{self.host_id}@{self.hour:%Y-%m-%d %H}"
