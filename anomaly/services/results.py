"""Per sensor-minute detection results (which methods ran, which fired, their scores), kept 30 days."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.conf import settings
from django.utils import timezone

from core.retention import delete_in_batches

from .. import methods
from ..models import DetectionResult

# Rows per INSERT: 5,000 keeps one statement's parameters well under PostgreSQL's limit (8 columns).
STORE_BATCH = 5000
PURGE_BATCH = 10_000
NOT_JUDGED = {"no_data", "no_criteria", "no_forecast"}


def _digits(flags: list[np.ndarray]) -> list[str]:
    return ["".join(chars) for chars in zip(*[np.where(f, "1", "0") for f in flags], strict=True)]


def store_results(minute: datetime, frame: pd.DataFrame, results: dict[str, dict[str, methods.MethodResult]]) -> int:
    """One DetectionResult per evaluated sensor, in the detection cycle's transaction (so exactly once)."""
    per_metric: dict[str, tuple[list[str], list[str]]] = {}
    scores: list[np.ndarray] = []
    states: list[np.ndarray] = []
    for metric, names in methods.FLAG_METHODS.items():
        chosen = [results[metric][name] for name in names]
        ran = _digits([~np.isin(result.state.astype(str), list(NOT_JUDGED)) for result in chosen])
        fired = _digits([result.fired for result in chosen])
        per_metric[metric] = (ran, fired)
        scores += [np.round(result.score.astype(float), 3) for result in chosen]
        states += [result.state.astype(str) for result in chosen]
    score_rows = np.column_stack(scores).tolist()
    state_rows = np.column_stack(states).tolist()
    rows = [
        DetectionResult(
            minute=minute,
            sensor_id=int(sensor_id),
            flow_ran=per_metric["flow"][0][index],
            flow_fired=per_metric["flow"][1][index],
            pressure_ran=per_metric["pressure"][0][index],
            pressure_fired=per_metric["pressure"][1][index],
            scores=score_rows[index],
            states=state_rows[index],
        )
        for index, sensor_id in enumerate(frame["sensor_id"])
    ]
    DetectionResult.objects.bulk_create(rows, batch_size=STORE_BATCH)
    return len(rows)


def method_view(result: DetectionResult) -> dict[str, dict[str, dict[str, object]]]:
    """{"flow": {"system": {"ran": true, "fired": false, "score": 0.1, "state": "ok"}, ...}, "pressure": {...}}."""
    view: dict[str, dict[str, dict[str, object]]] = {}
    position = 0
    for metric, names in methods.FLAG_METHODS.items():
        ran, fired = getattr(result, f"{metric}_ran"), getattr(result, f"{metric}_fired")
        view[metric] = {}
        for index, name in enumerate(names):
            view[metric][name] = {
                "ran": ran[index] == "1",
                "fired": fired[index] == "1",
                "score": result.scores[position],
                "state": result.states[position],
            }
            position += 1
    return view


def purge_old_results(now: datetime | None = None, max_seconds: float = 240.0) -> tuple[int, bool]:
    """Delete results older than ANOMALY_RESULTS_RETENTION_DAYS in batches; returns (deleted, finished)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.ANOMALY_RESULTS_RETENTION_DAYS)
    old = DetectionResult.objects.filter(minute__lt=cutoff)
    return delete_in_batches(old, batch_size=PURGE_BATCH, max_seconds=max_seconds)
