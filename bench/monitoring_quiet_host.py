"""False host-metric anomaly events per host per day, from this host's real samples, through the real path.

1. `--record FILE [--samples 1440] [--interval 1]`: the host agent's own sampler (`HostSampler`) samples
   this machine every `interval` seconds and writes one JSON line per sample.
2. `--replay FILE [--methods likelihood,ensemble]`: each recorded sample becomes one minute of a host
   (`replay-<file stem>`) in the database of DATABASE_URL (migrated), stored with `store_samples`; then
   `detect_host_minute` runs for every minute with the production rules (minute buckets, the history
   window, MIN_CHANGE, `anomaly.events.observe`) and the events opened are counted per method.
Every event is a false one by construction (nothing was injected), so events / (minutes / 1440) is the
false-event rate per host per day. Recording at 1 s instead of 60 s compresses a day into 24 minutes of
real samples; 1-second CPU readings are noisier than 1-minute means, so the figure is pessimistic.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
START = datetime(2026, 1, 5, tzinfo=UTC)


def record(path: Path, samples: int, interval: float) -> None:
    from monitoring.services.sampling import HostSampler

    sampler = HostSampler()
    with path.open("w") as handle:
        for _ in range(samples):
            time.sleep(interval)
            sample = sampler.sample()
            handle.write(json.dumps({"ts": sample.ts.isoformat(), "values": sample.values}, default=str) + "\n")
            handle.flush()


def replay(path: Path, methods: list[str]) -> dict[str, object]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from anomaly.models import AnomalyEvent
    from monitoring.models import Host
    from monitoring.services.detection import detect_host_minute
    from monitoring.services.sampling import Sample
    from monitoring.services.store import store_samples

    call_command("migrate", verbosity=0)
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    name = f"replay-{path.stem}"
    Host.objects.filter(name=name).delete()
    AnomalyEvent.objects.filter(source="host", subject=name).delete()
    Host.objects.exclude(name=name).update(active=False)  # only the replayed host is evaluated
    host = Host.objects.create(name=name, interval_seconds=60)
    samples = [Sample(host=name, ts=START + timedelta(minutes=i), values=row["values"]) for i, row in enumerate(lines)]
    store_samples(host, samples)
    history = settings.MONITORING_DETECT_HISTORY_MINUTES
    evaluated = len(lines) - history  # minutes with a full history window, as in steady operation
    figures: dict[str, object] = {}
    for method in methods:
        started = time.perf_counter()
        for index in range(history, len(lines)):
            detect_host_minute(START + timedelta(minutes=index), method=method)
        opened = AnomalyEvent.objects.filter(source="host", subject=name, method=method)
        figures[method] = {
            "events": opened.count(),
            "by_metric": dict(Counter(opened.values_list("metric", flat=True))),
            "events_per_host_day": round(opened.count() / (evaluated / 1440), 2),
            "seconds_per_minute_evaluated": round((time.perf_counter() - started) / evaluated, 4),
        }
    return {
        "bench": "monitoring_quiet_host",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, shared",
        "samples": len(lines),
        "recorded_from": lines[0]["ts"] if lines else None,
        "recorded_to": lines[-1]["ts"] if lines else None,
        "history_minutes": history,
        "minutes_evaluated": evaluated,
        "methods": figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path)
    parser.add_argument("--samples", type=int, default=1440)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--replay", type=Path)
    parser.add_argument("--methods", default="likelihood,ensemble")
    args = parser.parse_args()
    if args.record:
        record(args.record, args.samples, args.interval)
    if args.replay:
        print(json.dumps(replay(args.replay, args.methods.split(","))))


if __name__ == "__main__":
    main()
