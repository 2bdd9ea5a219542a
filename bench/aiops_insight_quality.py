"""Quality of the rule-based explainer on 20 incidents of known cause (target: the right cause in >= 18).

Every incident comes from pipewatch's own fault paths, not from hand-written events:
- leak, burst, stuck sensor, bridge down (every sensor of the site silent): the sensor simulator's fault
  injection (sensors.simulation), scored by the production sensor methods the way anomaly.evaluation
  runs them (criteria from 14 clean days, then every sensor-minute of the window), events with their
  evidence, the window's readings stored;
- worker down: Alertmanager webhook bodies (the project's alert rules' labels) through the real receiver
  (aiops.services.alerts.receive);
- disk filling: host samples of a filling disk, then the real capacity forecast (aiops.services.capacity),
  which opens the time-to-limit event;
- KIPRIS quota: the real harvest (ingest.tasks.harvest_organization) against the KIPRIS simulator with its
  quota fault, which pauses the run with KIPRIS's quota error, plus the alert an operator would get.
Each group of events goes through the real incident grouping (aiops.services.incidents.assign_events),
then the context builder and the rules. No LLM runs here (see docs/insight.md): the LLM column is null.

Builds its own database (`<DATABASE_URL's name>_bench_insight`, dropped first). Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.lib.database import bench_url, recreate_database, setup_django

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, 09:00 in Seoul
CODES = [f"{n:03d}" for n in range(1, 9)]
SITE = "North"
SEED = 11  # the site's sensors: the same profiles in the clean history (criteria) and in every case


def reset() -> None:
    from aiops.models import AlertPayload, CapacityForecast, Incident, Insight
    from anomaly.models import AnomalyEvent
    from ingest.models import HarvestRun
    from monitoring.models import HostSample
    from sensors.models import Reading

    for model in (Insight, Incident, AnomalyEvent, AlertPayload, CapacityForecast, Reading, HostSample, HarvestRun):
        model.objects.all().delete()


def sensors_case(kind: str, seed: int, rows: Any, baselines: Any) -> list[int]:
    """Simulate the fault, score every sensor-minute with the production methods, store the events
    that overlap the fault (with their evidence) and the readings around them; return the event ids."""
    import pandas as pd

    from anomaly.evaluation import evaluate_methods, minute_inputs, night_streaks, to_events
    from anomaly.models import AnomalyEvent
    from sensors.models import Reading, Sensor
    from sensors.simulation import Fault, simulate

    target = CODES[(3 * seed + 1) % len(CODES)]
    offset = timedelta(hours=5 + 3 * seed)
    if kind == "leak":
        faults = [Fault("leak", target, START + timedelta(hours=12), START + timedelta(days=5), 0.9)]
        days = 6
    elif kind == "burst":
        faults = [Fault("burst", target, START + offset, START + offset + timedelta(minutes=90), 0.8 + 0.2 * seed)]
        days = 1
    elif kind == "stuck":
        faults = [Fault("stuck", target, START + offset, START + offset + timedelta(hours=3))]
        days = 1
    else:  # bridge down: every sensor of the site silent at once
        faults = [Fault("dropout", code, START + offset, START + offset + timedelta(minutes=40)) for code in CODES]
        days = 1
    result = simulate(CODES, START, days * 1440, seed=SEED, faults=faults)
    frame = minute_inputs(result.readings.copy(), rows)
    nights = night_streaks(result.readings, baselines)
    results = evaluate_methods(frame, nights)
    found = to_events(frame, results)
    grace = timedelta(days=1) if kind == "leak" else timedelta(minutes=10)
    first, last = min(f.start for f in faults), max(f.end for f in faults) + grace
    found = found[(found["start"] <= last) & (found["last"] >= first)].sort_values("start")
    # one unresolved event per (sensor, metric, method), as in production: the first episode in the window
    found = found.drop_duplicates(["sensor", "metric", "method"])
    position = pd.Series(range(len(frame)), index=pd.MultiIndex.from_arrays([frame["sensor"], frame["ts"]]))
    sensors = {s.code: s for s in Sensor.objects.filter(code__in=CODES)}
    ids = []
    for item in found.itertuples(index=False):
        index = int(position[(item.sensor, item.start)])
        row = frame.iloc[index]
        method = results[(item.metric, item.method)]
        evidence: dict[str, Any] = {"state": str(method.state[index]), "value": _number(row[item.metric])}
        if item.method == "system":
            evidence |= {
                "flat_minutes": _number(row[f"{item.metric}_flat"]),
                "minutes_since_reading": _number(row["since_reading"]),
            }
        elif item.method == "value":
            evidence |= {"band": [_number(row[f"{item.metric}_lower"]), _number(row[f"{item.metric}_upper"])],
                         "median": _number(row[f"{item.metric}_median"])}  # fmt: skip
        else:
            night = nights[nights["sensor"] == item.sensor].iloc[-1]
            evidence |= {"night_min": _number(night["min_flow"]), "baseline": _number(night["baseline"]),
                         "streak": _number(night["streak"])}  # fmt: skip
        event = AnomalyEvent.objects.create(
            source="sensor", sensor=sensors[item.sensor], subject=item.sensor, metric=item.metric, method=item.method,
            started_at=item.start, last_fired_at=item.last,
            fired_count=max(1, int((item.last - item.start).total_seconds() // 60)),
            peak_score=float(method.score[index]), evidence=evidence,
            severity="critical" if item.method == "value" else "warning",
        )  # fmt: skip
        ids.append(event.pk)
    ts = result.readings["ts"]
    window = result.readings[(ts >= first - timedelta(hours=1)) & (ts <= first + timedelta(hours=2))]
    readings = [
        Reading(sensor=sensors[r.sensor], ts=r.ts, flow=r.flow, pressure=r.pressure, status=r.status)
        for r in window.itertuples()
    ]
    Reading.objects.bulk_create(readings, batch_size=5000)
    return ids


def _number(value: Any) -> float | None:
    import math

    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)


def alertmanager(alerts: list[tuple[str, dict[str, str]]]) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "pipewatch", "groupLabels": {},
        "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
        "alerts": [
            {"status": "firing", "labels": {"alertname": name, "severity": "critical", **labels},
             "annotations": {"summary": f"{name} fired", "runbook_url": "docs/monitoring.md"},
             "startsAt": now, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph",
             "fingerprint": f"{abs(hash(name)):016x}"[:16]}
            for name, labels in alerts
        ],
    }  # fmt: skip


def worker_case(seed: int) -> list[int]:
    from aiops.services.alerts import receive
    from anomaly.models import AnomalyEvent

    worker = ("PipewatchWorkerDown", {"instance": f"worker-{seed}:9100", "job": "pipewatch-worker", "pool": "prefork"})
    choices: list[list[tuple[str, dict[str, str]]]] = [
        [], [("PipewatchDetectStalled", {})], [("PipewatchQueueBacklog", {"queue": "detect"})]
    ]  # fmt: skip
    extra = choices[seed % 3]
    receive(alertmanager([worker, *extra]))
    return list(AnomalyEvent.objects.values_list("pk", flat=True))


def disk_case(seed: int) -> list[int]:
    from django.utils import timezone

    from aiops.services.capacity import run_capacity
    from anomaly.models import AnomalyEvent
    from monitoring.models import Host, HostSample

    host, _ = Host.objects.get_or_create(name=f"db-{seed}")
    now = timezone.now().replace(second=0, microsecond=0)
    rate = (0.8, 1.5, 3.0)[seed % 3]  # percent per hour: full in 19 h, 10 h, 5 h
    samples = []
    for minute in range(8 * 60, 0, -1):
        disk = 80.0 - rate * minute / 60
        samples.append(HostSample(
            host=host, ts=now - timedelta(minutes=minute), cpu_percent=12.0, load_1=0.4, load_5=0.4, load_15=0.4,
            memory_total_bytes=8 << 30, memory_used_bytes=3 << 30, memory_available_bytes=5 << 30, memory_percent=37.5,
            swap_total_bytes=0, swap_used_bytes=0, swap_percent=0.0, disk_percent=disk, disk_read_bytes_per_second=1e5,
            disk_write_bytes_per_second=4e6, net_sent_bytes_per_second=1e4, net_recv_bytes_per_second=1e4,
        ))  # fmt: skip
    HostSample.objects.bulk_create(samples)
    run_capacity(now)
    return list(AnomalyEvent.objects.values_list("pk", flat=True))


def kipris_case(seed: int, simulator: Any) -> list[int]:
    from aiops.services.alerts import receive
    from anomaly.models import AnomalyEvent
    from ingest import services, tasks
    from ingest.models import Organization

    sim_org = next(o for o in simulator.organizations[seed * 10 :] if o.lookup == "business")
    org, _ = Organization.objects.get_or_create(
        business_number=sim_org.business_number, defaults={"name": sim_org.name}
    )
    simulator.control({"faults": [{"kind": "quota", "count": 50}]})
    run = services.create_run(org.pk)
    tasks.harvest_organization.apply(args=[run.pk])
    receive(alertmanager([("KiprisQuotaExceeded", {"job": "pipewatch-worker"})]))
    return list(AnomalyEvent.objects.values_list("pk", flat=True))


def explain(event_ids: list[int]) -> tuple[str, list[str], float]:
    from aiops.insight import context, rules
    from aiops.services.incidents import GroupingSettings, assign_events
    from anomaly.models import AnomalyEvent

    assign_events(GroupingSettings(group_wait=0, group_interval=0, repeat_interval=3600, proximity=900, share=3600))
    first = AnomalyEvent.objects.filter(pk__in=event_ids).order_by("started_at", "pk").first()
    if first is None:
        return "no event", [], 0.0
    incident = first.incident_membership.incident
    members = [m.event for m in incident.memberships.select_related("event__sensor")]
    started = time.perf_counter()
    built = context.build(members, title=incident.title, severity=incident.severity)
    answer = rules.explain(built)
    described = [f"{e.subject} {e.metric} {e.method} {e.evidence.get('state', '')}".strip() for e in members]
    return answer.cause_code, described, (time.perf_counter() - started) * 1000


def main() -> None:
    database = bench_url("bench_insight")
    recreate_database(database)
    from ingest.simulator import DEFAULT_KEY, SimulatedKipris, make_server

    simulator = SimulatedKipris(seed=3, organizations=200)
    server = make_server(simulator)
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["KIPRIS_BASE_URL"] = f"http://127.0.0.1:{server.server_address[1]}"
    os.environ["KIPRIS_API_KEY"] = DEFAULT_KEY
    setup_django(database)
    from anomaly.criteria import Parameters, compute_criteria
    from sensors.models import Sensor
    from sensors.simulation import simulate

    for code in CODES:
        Sensor.objects.create(code=code, name=f"meter {code}", location=SITE)
    history = simulate(CODES, START - timedelta(days=14), 14 * 1440, seed=SEED)
    rows = compute_criteria(history.readings, Parameters.from_settings())
    baselines = rows[rows["metric"] == "flow"].groupby("sensor")["night_baseline"].first()

    plan = [("leak", "leak")] * 3 + [("burst", "burst")] * 3 + [("stuck", "sensor_stuck")] * 3
    plan += [("bridge", "bridge_or_network")] * 3 + [("worker", "worker_or_broker_down")] * 3
    plan += [("disk", "host_resource")] * 3 + [("kipris", "kipris_quota")] * 2
    cases: list[dict[str, Any]] = []
    started = time.perf_counter()
    for number, (kind, expected) in enumerate(plan):
        reset()
        seed = sum(1 for k, _ in plan[:number] if k == kind)
        if kind in {"leak", "burst", "stuck", "bridge"}:
            ids = sensors_case(kind, seed, rows, baselines)
        elif kind == "worker":
            ids = worker_case(seed)
        elif kind == "disk":
            ids = disk_case(seed)
        else:
            ids = kipris_case(seed, simulator)
        named, members, ms = explain(ids)
        case: dict[str, Any] = {
            "fault": kind, "expected": expected, "rules": named, "events": len(ids), "members": len(members),
            "explain_ms": round(ms, 1), "right": named == expected,
        }  # fmt: skip
        if not case["right"]:
            case["incident"] = members[:12]
        cases.append(case)
    server.shutdown()
    right = sum(case["right"] for case in cases)
    print(json.dumps({
        "bench": "aiops_insight_quality", "incidents": len(cases), "rules_right": right, "target": 18,
        "llm_right": None, "llm_note": "no LLM could be run here (no model weights on this machine)",
        "median_explain_ms": sorted(c["explain_ms"] for c in cases)[len(cases) // 2],
        "wrong": [c for c in cases if not c["right"]], "cases": cases,
        "seconds": round(time.perf_counter() - started, 1), "machine": f"{platform.node()} {os.cpu_count()} cores",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
