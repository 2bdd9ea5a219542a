"""Host sampling with psutil: counters are read raw and turned into rates by the caller-owned sampler.

CPU busy percentages are computed from `cpu_times` deltas kept in the sampler itself, not with
`psutil.cpu_percent`, whose hidden module-level state any other caller in the process would disturb.
The sampler is primed on construction, so its first sample already covers a real interval.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psutil

# Pseudo and container-plumbing file systems: their "usage" says nothing about free disk space.
IGNORED_FSTYPES = frozenset(
    {"squashfs", "tmpfs", "devtmpfs", "overlay", "proc", "sysfs", "cgroup", "cgroup2", "nsfs", "autofs", "fuse.lxcfs"}
)
PROCESS_ATTRS = ["pid", "name", "username", "memory_percent", "memory_info", "num_threads", "status"]


def _busy_percent(before: Any, after: Any) -> float:
    """Percent of the interval a CPU was not idle (idle and iowait count as idle, like psutil)."""
    total = sum(after) - sum(before)
    if total <= 0:
        return 0.0
    idle = (after.idle - before.idle) + (getattr(after, "iowait", 0.0) - getattr(before, "iowait", 0.0))
    return round(min(100.0, max(0.0, 100.0 * (1 - idle / total))), 2)


def _rate(before: float | None, after: float, seconds: float) -> float:
    """Per-second rate of a counter; 0 after a counter reset (reboot, interface re-created)."""
    if before is None or seconds <= 0 or after < before:
        return 0.0
    return round((after - before) / seconds, 3)


@dataclass
class Counters:
    """The raw counters of one moment, kept to turn the next reading into rates."""

    monotonic: float
    cpu_times: list[Any]
    disk_io: dict[str, Any]
    net_io: dict[str, Any]


@dataclass
class Sample:
    """One host sample: the scalar columns of HostSample plus per-device detail and raw counters."""

    host: str
    ts: datetime
    values: dict[str, Any]
    cpu_times: list[dict[str, float]] = field(default_factory=list)
    disk_io: dict[str, dict[str, float]] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        """The JSON document kept in Redis and served by /metrics/current."""
        return {"host": self.host, "timestamp": self.ts.isoformat(), **self.values}


def host_info() -> dict[str, Any]:
    """What does not change while the agent runs."""
    return {
        "cpu_count": psutil.cpu_count() or 0,
        "memory_total_bytes": psutil.virtual_memory().total,
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}"[:200],
        "boot_time": datetime.fromtimestamp(psutil.boot_time(), tz=UTC),
    }


def read_disks() -> list[dict[str, Any]]:
    """Usage of every real mount (one row per device: bind mounts of one disk are the same disk)."""
    disks: list[dict[str, Any]] = []
    seen: set[str] = set()
    for part in psutil.disk_partitions(all=False):
        if part.fstype in IGNORED_FSTYPES or part.device in seen:
            continue
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:  # unreadable or vanished mount: skip it, the others still count
            continue
        seen.add(part.device)
        disks.append(
            {
                "mountpoint": part.mountpoint,
                "device": part.device,
                "fstype": part.fstype,
                "total_bytes": usage.total,
                "used_bytes": usage.used,
                "free_bytes": usage.free,
                "percent": usage.percent,
            }
        )
    if not disks:  # containers may list no real partition: the root file system still has a usage
        usage = psutil.disk_usage("/")
        disks.append(
            {
                "mountpoint": "/",
                "device": "rootfs",
                "fstype": "rootfs",
                "total_bytes": usage.total,
                "used_bytes": usage.used,
                "free_bytes": usage.free,
                "percent": usage.percent,
            }
        )
    return disks


def top_processes(limit: int = 100) -> list[dict[str, Any]]:
    """The busiest processes by CPU and by memory (their union, up to `limit` each).

    `cpu_percent` of a process is measured since the previous call for that process (psutil caches the
    Process objects between `process_iter` calls), so it is 0.0 the first time a process is seen.
    """
    rows: list[dict[str, Any]] = []
    for proc in psutil.process_iter(PROCESS_ATTRS):
        try:
            cpu = proc.cpu_percent(None)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        info = proc.info
        memory_info = info.get("memory_info")
        rows.append(
            {
                "pid": info["pid"],
                "name": info.get("name") or "",
                "username": info.get("username") or "",
                "status": info.get("status") or "",
                "threads": info.get("num_threads") or 0,
                "cpu_percent": round(cpu, 2),
                "memory_percent": round(info.get("memory_percent") or 0.0, 3),
                "memory_rss_bytes": memory_info.rss if memory_info else 0,
            }
        )
    by_cpu = sorted(rows, key=lambda row: row["cpu_percent"], reverse=True)[:limit]
    by_memory = sorted(rows, key=lambda row: row["memory_percent"], reverse=True)[:limit]
    return list({row["pid"]: row for row in by_cpu + by_memory}.values())


class HostSampler:
    """Takes samples of this host; rates and CPU percentages cover the time since the previous sample."""

    def __init__(self, host: str | None = None) -> None:
        self.host = host or platform.node() or "localhost"
        self._previous = self._counters()  # primes the first interval

    @staticmethod
    def _counters() -> Counters:
        disk_io = psutil.disk_io_counters(perdisk=True) or {}
        return Counters(
            monotonic=time.monotonic(),
            cpu_times=list(psutil.cpu_times(percpu=True)),
            disk_io=dict(disk_io),
            net_io=dict(psutil.net_io_counters(pernic=True)),
        )

    def sample(self) -> Sample:
        now = datetime.now(tz=UTC)
        counters = self._counters()
        previous, self._previous = self._previous, counters
        seconds = counters.monotonic - previous.monotonic

        per_core = [
            _busy_percent(before, after) for before, after in zip(previous.cpu_times, counters.cpu_times, strict=False)
        ]
        total_before = [sum(column) for column in zip(*previous.cpu_times, strict=True)]
        total_after = [sum(column) for column in zip(*counters.cpu_times, strict=True)]
        cpu_fields = type(counters.cpu_times[0])._fields
        cpu_total = _busy_percent(type(counters.cpu_times[0])(*total_before), type(counters.cpu_times[0])(*total_after))

        load_1, load_5, load_15 = os.getloadavg()
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        disks = read_disks()

        read_rate = write_rate = 0.0
        for name, io in counters.disk_io.items():
            before = previous.disk_io.get(name)
            read_rate += _rate(before.read_bytes if before else None, io.read_bytes, seconds)
            write_rate += _rate(before.write_bytes if before else None, io.write_bytes, seconds)

        interfaces: dict[str, dict[str, float]] = {}
        for name, io in counters.net_io.items():
            before = previous.net_io.get(name)
            interfaces[name] = {
                "bytes_sent": io.bytes_sent,
                "bytes_recv": io.bytes_recv,
                "packets_sent": io.packets_sent,
                "packets_recv": io.packets_recv,
                "errin": io.errin,
                "errout": io.errout,
                "dropin": io.dropin,
                "dropout": io.dropout,
                "sent_bytes_per_second": _rate(before.bytes_sent if before else None, io.bytes_sent, seconds),
                "recv_bytes_per_second": _rate(before.bytes_recv if before else None, io.bytes_recv, seconds),
            }
        # Loopback traffic is the host talking to itself: it is listed per interface but not in the totals.
        external = [stats for name, stats in interfaces.items() if name != "lo"]

        values = {
            "interval_seconds": round(seconds, 3),
            "cpu_percent": cpu_total,
            "cpu_per_core": per_core,
            "load_1": round(load_1, 3),
            "load_5": round(load_5, 3),
            "load_15": round(load_15, 3),
            "memory_total_bytes": memory.total,
            "memory_used_bytes": memory.total - memory.available,
            "memory_available_bytes": memory.available,
            "memory_percent": memory.percent,
            "swap_total_bytes": swap.total,
            "swap_used_bytes": swap.used,
            "swap_percent": swap.percent,
            "disk_percent": max(disk["percent"] for disk in disks),
            "disk_read_bytes_per_second": round(read_rate, 3),
            "disk_write_bytes_per_second": round(write_rate, 3),
            "disks": disks,
            "net_sent_bytes_per_second": round(sum(stats["sent_bytes_per_second"] for stats in external), 3),
            "net_recv_bytes_per_second": round(sum(stats["recv_bytes_per_second"] for stats in external), 3),
            "interfaces": interfaces,
        }
        return Sample(
            host=self.host,
            ts=now,
            values=values,
            cpu_times=[dict(zip(cpu_fields, times, strict=True)) for times in counters.cpu_times],
            disk_io={
                name: {
                    "read_bytes": io.read_bytes,
                    "write_bytes": io.write_bytes,
                    "reads": io.read_count,
                    "writes": io.write_count,
                }
                for name, io in counters.disk_io.items()
            },
        )
