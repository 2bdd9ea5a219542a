"""The LLM path's own cost, the model's time excluded: context, redaction, prompt, one HTTP round trip
through the `openai` package to the local LLM simulator (which answers at once), validation, restore.

Builds its own database (`<DATABASE_URL's name>_bench_insight_llm`), one incident of 30 sensor-gap events
on one site plus an account event (names and an address to redact), and explains it 30 times with the
rules, then 30 times with the LLM path. Prints one JSON line (milliseconds, prompt size).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.lib.database import bench_url, recreate_database, setup_django

RUNS = 30


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1)


def main() -> None:
    database = bench_url("bench_insight_llm")
    recreate_database(database)
    from aiops.insight.llm_simulator import SimulatorState, start_server

    state = SimulatorState(flavour="ollama")
    server, url = start_server(state)
    os.environ.update({"INSIGHT_LLM_URL": url, "INSIGHT_LLM_MODEL": "sim", "INSIGHT_LLM_HOURLY_BUDGET": "0"})
    setup_django(database)
    from aiops.insight import service
    from aiops.services.incidents import GroupingSettings, assign_events
    from anomaly.models import AnomalyEvent
    from sensors.models import Sensor

    start = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    for number in range(1, 31):
        sensor = Sensor.objects.create(code=f"{number:03d}", location="North")
        AnomalyEvent.objects.create(
            source="sensor", sensor=sensor, subject=sensor.code, metric="flow", method="system",
            started_at=start + timedelta(seconds=number), last_fired_at=start + timedelta(minutes=5),
            evidence={"state": "gap", "minutes_since_reading": 5},
        )  # fmt: skip
    AnomalyEvent.objects.create(source="account", subject="kim.operator", metric="logins", method="behaviour",
                                started_at=start, last_fired_at=start, evidence={"ip": "198.51.100.23"})  # fmt: skip
    assign_events(GroupingSettings(group_wait=0, group_interval=0, repeat_interval=3600, proximity=900, share=3600))
    from aiops.models import Incident

    incident = Incident.objects.get()
    timings: dict[str, list[float]] = {"rules": [], "llm": []}
    prompt_chars = prompt_tokens = 0
    for use_llm in (False, True):
        for _ in range(RUNS):
            started = time.perf_counter()
            rows = service.explain(incident=incident, use_llm=use_llm)
            timings["llm" if use_llm else "rules"].append((time.perf_counter() - started) * 1000)
            if use_llm:
                assert rows[-1].error == "", rows[-1].error
                prompt_chars, prompt_tokens = rows[-1].context_chars, rows[-1].prompt_tokens
    server.shutdown()
    print(json.dumps({
        "bench": "aiops_insight_llm", "runs": RUNS, "members": incident.memberships.count(),
        "rules_ms": {"p50": percentile(timings["rules"], 0.5), "p95": percentile(timings["rules"], 0.95)},
        "rules_plus_llm_path_ms": {"p50": percentile(timings["llm"], 0.5), "p95": percentile(timings["llm"], 0.95)},
        "llm_path_overhead_ms_p50": round(statistics.median(timings["llm"]) - statistics.median(timings["rules"]), 1),
        "prompt_chars": prompt_chars, "prompt_tokens_estimated_by_simulator": prompt_tokens,
        "machine": f"{platform.node()} {os.cpu_count()} cores", "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
