"""Score the sensor methods against the simulator's ground truth (`manage.py evaluate_detection`).

The evaluation runs the production code paths that matter, in memory rather than minute by minute
through the database (30 days x 50 sensors is 43,200 cycles):
1. criteria: `compute_criteria` over a clean simulated history before the evaluation window;
2. inputs per sensor-minute, derived the way the minute query derives them (minutes since the last
   reading, length of the flat run in minutes and in readings capped at the lookback window, criteria of
   the minute's slot with the sensor's cadence, night summaries with their streaks);
3. `anomaly.methods` over every sensor-minute at once, with the production thresholds (settings);
4. events with the production rule (a new event when a method fires after more than M clean minutes, M
   at the sensor's cadence: events.clean_minutes_at);
5. matching: an event matches a fault of the same sensor (any metric) when it overlaps the fault's span
   extended by a grace period (M minutes; a day for the night method, which reports at the night's end).

Reported per fault kind: recall (any method), recall within the kind's target delay, median and worst
delay, and precision of the kind's detecting methods (events matching that kind over those events plus
the detecting methods' unmatched events); at a coarse cadence also how many faults covered a stored reading
at all (`seen`: a 2-minute spike between two 5-minute readings leaves no trace) and the recall among those.
Per method: events, matched, precision. On the same data without faults: false events per sensor-week.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings

from sensors.simulation import Fault, simulate

from . import methods
from .criteria import (
    NIGHT_BLOCK_MINUTES,
    NIGHT_END_HOUR,
    NIGHT_START_HOUR,
    Parameters,
    cadences,
    compute_criteria,
    local_times,
    night_minima,
)
from .events import clean_minutes_at

METRICS = ("flow", "pressure")
# The methods that are meant to catch each fault kind (for per-kind precision) and the delay target.
DETECTING = {
    "burst": ("value", "system"),
    "spike": ("value",),
    "stuck": ("system",),
    "dropout": ("system",),
    "leak": ("night",),
}
TARGET_DELAY = {
    "burst": timedelta(minutes=5),
    "spike": timedelta(minutes=5),
    "stuck": timedelta(minutes=5),
    "dropout": timedelta(minutes=10),
    "leak": timedelta(days=3),
}
PHYSICAL = {"flow": (0.0, 1000.0), "pressure": (0.0, 16.0)}  # the Sensor model's defaults


@dataclass(frozen=True)
class Plan:
    sensors: int = 50
    days: int = 30
    history_days: int = 14
    seed: int = 11
    start: datetime = datetime(2026, 3, 2, tzinfo=UTC)
    cadence_minutes: int = 1  # keep every N-th minute's reading: a SCADA export's 5- or 15-minute cadence


def at_cadence(readings: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """Only the readings on the cadence (minute of the day divisible by `minutes`), as a logger would store."""
    if minutes <= 1:
        return readings
    minute_of_day = readings["ts"].dt.hour * 60 + readings["ts"].dt.minute
    return readings[minute_of_day % minutes == 0].reset_index(drop=True)


def codes_for(plan: Plan) -> list[str]:
    return [f"{number:03d}" for number in range(1, plan.sensors + 1)]


def fault_plan(plan: Plan) -> list[Fault]:
    """Per sensor, one fault of each minute-scale kind in its own day, spikes twice; a leak on every third
    sensor (a 6-day ramp to +60..100 % of the night minimum, so the rise passes 20 % on the second or third
    night). Faults never overlap on a sensor, and the first two days stay clean (nights need a streak)."""
    rng = np.random.default_rng([plan.seed, 99])
    faults: list[Fault] = []
    minute = timedelta(minutes=1)
    for index, code in enumerate(codes_for(plan)):
        days = rng.permutation(np.arange(2, plan.days - 1))[:6].tolist()
        kinds = [("burst", 30, 180, 0.6, 1.2), ("stuck", 30, 240, 0, 0), ("spike", 1, 3, 2.0, 4.0),
                 ("spike", 1, 3, 2.0, 4.0), ("dropout", 15, 60, 0, 0)]  # fmt: skip
        for day, (kind, shortest, longest, low, high) in zip(days, kinds, strict=False):
            start = plan.start + timedelta(days=day, minutes=int(rng.integers(0, 1440 - longest)))
            length = int(rng.integers(shortest, longest + 1))
            magnitude = float(rng.uniform(low, high)) if high else 0.0
            faults.append(Fault(kind, code, start, start + length * minute, magnitude))
        if index % 3 == 0 and plan.days >= 11:  # a leak needs room for its 6 days and a day to be flagged
            start = plan.start + timedelta(days=int(rng.integers(3, plan.days - 7)), hours=12)
            faults.append(Fault("leak", code, start, start + timedelta(days=6), float(rng.uniform(0.6, 1.0))))
    # leaks overlap the minute-scale faults of their sensor: drop those, a leak is judged on its own
    leaks = {fault.sensor: fault for fault in faults if fault.kind == "leak"}
    return [
        fault
        for fault in faults
        if fault.kind == "leak"
        or fault.sensor not in leaks
        or fault.end <= leaks[fault.sensor].start
        or fault.start >= leaks[fault.sensor].end + timedelta(days=1)
    ]


def _flat_runs(frame: pd.DataFrame, metric: str, lookback: int, cadence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per reading: minutes since the sensor last reported a different value, and how many readings the run of
    identical values ending here spans (both capped like the SQL window)."""
    previous_sensor = frame["sensor"].shift()
    differs = frame[metric].ne(frame[metric].shift()) | frame["sensor"].ne(previous_sensor)
    # a run of equal values starts where `differs`; the reading before it is when the value last differed
    run = differs.cumsum()
    before = frame["ts"].shift().where(differs & frame["sensor"].eq(previous_sensor))
    changed = before.groupby(run).transform("first")
    flat = (frame["ts"] - changed).dt.total_seconds() / 60
    first_reading = frame.groupby("sensor")["ts"].transform("min")
    since_first = (frame["ts"] - first_reading).dt.total_seconds() / 60 + 1
    flat = flat.fillna(since_first)
    readings = frame.groupby(run).cumcount().to_numpy(dtype=float) + 1
    return np.minimum(flat.to_numpy(dtype=float), lookback), np.minimum(readings, np.floor(lookback / cadence))


def minute_inputs(readings: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Every sensor-minute of the window (missing readings as NaN) with what the methods need."""
    readings = readings.sort_values(["sensor", "ts"], ignore_index=True)
    lookback = settings.ANOMALY_LOOKBACK_MINUTES
    cadence = sensor_cadences(rows)
    for metric in METRICS:
        readings[f"{metric}_flat"], readings[f"{metric}_flat_readings"] = _flat_runs(
            readings, metric, lookback, readings["sensor"].map(cadence).fillna(1).to_numpy(dtype=float)
        )
    grid = pd.MultiIndex.from_product(
        [sorted(readings["sensor"].unique()), pd.date_range(readings["ts"].min(), readings["ts"].max(), freq="min")],
        names=["sensor", "ts"],
    )
    frame = readings.set_index(["sensor", "ts"]).reindex(grid).reset_index()
    last_seen = frame["ts"].where(frame["flow"].notna()).groupby(frame["sensor"]).ffill()
    frame["since_reading"] = ((frame["ts"] - last_seen).dt.total_seconds() / 60).fillna(lookback).clip(upper=lookback)
    for metric in METRICS:
        frame[f"{metric}_flat"] = frame[f"{metric}_flat"].fillna(0)
        frame[f"{metric}_flat_readings"] = frame[f"{metric}_flat_readings"].fillna(0)
    frame["cadence"] = frame["sensor"].map(cadence).fillna(1).to_numpy(dtype=float)
    local = local_times(frame["ts"])
    frame["hour"] = local.dt.hour
    frame["weekend"] = local.dt.day_of_week >= 5
    for metric in METRICS:
        part = rows[rows["metric"] == metric][
            ["sensor", "hour", "weekend", "median", "mad", "lower", "upper", "max_flat_run"]
        ]
        part = part.rename(columns={c: f"{metric}_{c}" for c in part.columns if c not in {"sensor", "hour", "weekend"}})
        frame = frame.merge(part, on=["sensor", "hour", "weekend"], how="left")
    return frame


def sensor_cadences(rows: pd.DataFrame) -> pd.Series:
    """sensor code -> the cadence its criteria learned."""
    return rows.groupby("sensor")["cadence_minutes"].first()


def night_streaks(readings: pd.DataFrame, baselines: pd.Series, cadence: pd.Series | None = None) -> pd.DataFrame:
    """Per sensor and night: min flow, rise over baseline, exceeded, streak (as services.night computes);
    `cadence` per sensor code as the criteria learned it (default: inferred from the readings)."""
    cadence = cadences(readings) if cadence is None else cadence
    nights = night_minima(readings, cadence).sort_values(["sensor", "night"], ignore_index=True)
    # a complete night minus dropouts (30 of 42 blocks at 1 minute; at 15 minutes only 28 blocks hold a
    # reading, so 20); the partial nights at the window's edges drop
    block_minutes = 60 * (24 - NIGHT_START_HOUR + NIGHT_END_HOUR)
    with_readings = (
        block_minutes
        / NIGHT_BLOCK_MINUTES
        * np.minimum(1, NIGHT_BLOCK_MINUTES / nights["sensor"].map(cadence).fillna(1))
    )
    nights = nights[nights["blocks"] >= 0.7 * with_readings]
    nights["baseline"] = pd.to_numeric(nights["sensor"].map(baselines), errors="coerce")  # None: no baseline
    nights["rise"] = nights["min_flow"] / nights["baseline"] - 1
    nights["exceeded"] = nights["rise"] > settings.ANOMALY_NIGHT_MARGIN
    run = (~nights["exceeded"]).groupby(nights["sensor"]).cumsum()
    nights["streak"] = nights.groupby(["sensor", run])["exceeded"].cumsum()
    return nights


def evaluate_methods(frame: pd.DataFrame, nights: pd.DataFrame) -> dict[tuple[str, str], methods.MethodResult]:
    size = len(frame)
    results: dict[tuple[str, str], methods.MethodResult] = {}
    for metric in METRICS:
        value = frame[metric].to_numpy(dtype=float)
        cadence = frame["cadence"].to_numpy(dtype=float)
        stuck_readings, stuck_minutes = methods.stuck_limits(
            stuck_minutes=np.full(size, float(settings.ANOMALY_STUCK_MINUTES)),
            stuck_readings=settings.ANOMALY_STUCK_READINGS,
            max_flat_run=frame[f"{metric}_max_flat_run"].fillna(0).to_numpy(dtype=float),
            cadence=cadence,
            lookback_minutes=settings.ANOMALY_LOOKBACK_MINUTES,
        )
        low, high = PHYSICAL[metric]
        results[(metric, "system")] = methods.system(
            value=value,
            status=frame["status"].fillna(0).to_numpy(dtype=float),
            minutes_since_reading=frame["since_reading"].to_numpy(dtype=float),
            flat_minutes=frame[f"{metric}_flat"].to_numpy(dtype=float),
            flat_readings=frame[f"{metric}_flat_readings"].to_numpy(dtype=float),
            physical_min=np.full(size, low),
            physical_max=np.full(size, high),
            gap_minutes=methods.gap_limit(np.full(size, float(settings.ANOMALY_GAP_MINUTES)), cadence),
            stuck_minutes=stuck_minutes,
            stuck_readings=stuck_readings,
        )
        results[(metric, "value")] = methods.value(
            value=value,
            lower=frame[f"{metric}_lower"].to_numpy(dtype=float),
            upper=frame[f"{metric}_upper"].to_numpy(dtype=float),
            median=frame[f"{metric}_median"].to_numpy(dtype=float),
            mad=frame[f"{metric}_mad"].to_numpy(dtype=float),
        )
    # the night flag all day: the streak of the last night that had ended by this minute
    local = local_times(frame["ts"])
    last_night = (local - pd.Timedelta(hours=5)).dt.normalize().dt.date - timedelta(days=1)
    keyed = nights.set_index(["sensor", "night"])
    index = pd.MultiIndex.from_arrays([frame["sensor"], last_night])
    streak = keyed["streak"].reindex(index).to_numpy(dtype=float)
    rise = keyed["rise"].reindex(index).to_numpy(dtype=float)
    results[("flow", "night")] = methods.night(
        streak=streak, nights=np.full(size, float(settings.ANOMALY_NIGHT_NIGHTS)), rise=rise
    )
    return results


def to_events(frame: pd.DataFrame, results: dict[tuple[str, str], methods.MethodResult]) -> pd.DataFrame:
    """Events with the production rule: a firing minute more than M minutes after the last one opens a new one
    (M = events.clean_minutes_at the sensor's cadence)."""
    parts = []
    for (metric, method), result in results.items():
        fired = frame.loc[result.fired, ["sensor", "ts", "cadence"]].sort_values(["sensor", "ts"])
        if fired.empty:
            continue
        clean = pd.to_timedelta([clean_minutes_at(cadence) for cadence in fired["cadence"]], unit="min").to_numpy()
        new = fired["sensor"].ne(fired["sensor"].shift()) | (fired["ts"].diff() > clean)
        grouped = fired.groupby(new.cumsum())
        events = grouped.agg(sensor=("sensor", "first"), start=("ts", "first"), last=("ts", "last"))
        parts.append(events.assign(metric=metric, method=method))
    columns = ["sensor", "start", "last", "metric", "method"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def match(events: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Event-fault pairs that overlap: same sensor, any metric (a leak or a burst lowers the pressure too, a
    real effect the simulator's truth lists under flow only), fault span extended by the grace period."""
    faults = truth.drop_duplicates(["sensor", "kind", "start", "end"]).drop(columns=["metric"])
    pairs = events.reset_index(names="event").merge(
        faults.reset_index(names="fault"), on="sensor", suffixes=("", "_fault")
    )
    grace = pd.to_timedelta(np.where(pairs["method"] == "night", 24 * 60, settings.ANOMALY_CLEAN_MINUTES), unit="min")
    overlaps = (pairs["start"] <= pairs["end"] + grace) & (pairs["last"] >= pairs["start_fault"])
    return pairs[overlaps]


def score(events: pd.DataFrame, truth: pd.DataFrame, faults: list[Fault], plan: Plan) -> dict[str, Any]:
    pairs = match(events, truth)
    matched_events = set(pairs["event"])
    report: dict[str, Any] = {"kinds": {}, "methods": {}}
    for method in sorted(events["method"].unique()) if len(events) else []:
        of_method = events[events["method"] == method]
        hits = sum(index in matched_events for index in of_method.index)
        report["methods"][method] = {
            "events": len(of_method),
            "matched": hits,
            "precision": round(hits / len(of_method), 4) if len(of_method) else None,
        }
    unmatched = events[~events.index.isin(matched_events)]
    kinds = sorted({fault.kind for fault in faults})
    for kind in kinds:
        kind_faults = truth[truth["kind"] == kind]
        kind_pairs = pairs[pairs["kind"] == kind]
        # a fault is found once any of its metrics has a matching event; its delay is the earliest event's
        first = (kind_pairs["start"] - kind_pairs["start_fault"]).clip(lower=pd.Timedelta(0))
        per_fault = first.groupby([kind_pairs["sensor"], kind_pairs["start_fault"]]).min()
        total = kind_faults.groupby(["sensor", "start"]).ngroups
        spans = kind_faults.drop_duplicates(["sensor", "start"])
        seen = {
            (sensor, start)
            for sensor, start, end in spans[["sensor", "start", "end"]].itertuples(index=False)
            if covers_a_reading(start, end, plan.cadence_minutes)
        }
        found_seen = sum(key in seen for key in per_fault.index)
        detecting = DETECTING.get(kind, ())
        true_events = kind_pairs[kind_pairs["method"].isin(detecting)]["event"].nunique()
        false_events = int(unmatched["method"].isin(detecting).sum())
        delays = per_fault.dt.total_seconds() / 60
        report["kinds"][kind] = {
            "faults": total,
            "recall": round(len(per_fault) / total, 4) if total else None,
            "recall_within_target": round(float((per_fault <= TARGET_DELAY[kind]).sum()) / total, 4) if total else None,
            "target_delay_minutes": TARGET_DELAY[kind].total_seconds() / 60,
            "median_delay_minutes": round(float(delays.median()), 1) if len(delays) else None,
            "max_delay_minutes": round(float(delays.max()), 1) if len(delays) else None,
            "precision": round(true_events / (true_events + false_events), 4) if true_events + false_events else None,
            "seen": len(seen),
            "recall_seen": round(found_seen / len(seen), 4) if seen else None,
        }
    report["unmatched_events"] = len(unmatched)
    return report


def covers_a_reading(start: datetime, end: datetime, cadence: int) -> bool:
    """Whether [start, end) holds a minute a logger at this cadence stores (at_cadence's minutes): a fault
    between two readings leaves no trace in the data, whatever the method."""
    midnight = pd.Timestamp(start).floor("D")
    minute_of_day = (pd.Timestamp(start) - midnight).total_seconds() / 60
    first = midnight + pd.Timedelta(minutes=-(-minute_of_day // cadence) * cadence)
    return bool(first < pd.Timestamp(end))


def leak_nights(nights: pd.DataFrame, events: pd.DataFrame, faults: list[Fault]) -> list[dict[str, Any]]:
    """For each leak: the first night its rise passed 20 % and the nights until the night method fired."""
    out = []
    flagged = events[events["method"] == "night"]
    for fault in (f for f in faults if f.kind == "leak"):
        sensor_nights = nights[nights["sensor"] == fault.sensor].set_index("night")
        baseline = sensor_nights["baseline"].iloc[0] if len(sensor_nights) else np.nan
        # the injected rise alone (relative to the clean night minimum), judged at each night's minimum
        during = sensor_nights.loc[
            [n for n in sensor_nights.index if fault.start.date() <= n < (fault.end + timedelta(days=1)).date()]
        ]
        over = during[during["min_flow"] >= baseline * 1.2] if len(during) else during
        first_20 = over.index.min() if len(over) else None
        fired = flagged[(flagged["sensor"] == fault.sensor) & (flagged["last"] >= fault.start)]
        fired_at = fired["start"].min() if len(fired) else None
        nights_after = None
        if first_20 is not None and fired_at is not None:
            fired_night = (fired_at.tz_convert(settings.TIME_ZONE) - pd.Timedelta(hours=5)).date() - timedelta(days=1)
            nights_after = (fired_night - first_20).days + 1
        out.append(
            {
                "sensor": fault.sensor,
                "magnitude": round(fault.magnitude, 3),
                "first_night_20pct": str(first_20) if first_20 else None,
                "flagged_at": fired_at.isoformat() if fired_at is not None else None,
                "nights_from_20pct_to_flag": nights_after,
            }
        )
    return out


def run(plan: Plan) -> dict[str, Any]:
    codes = codes_for(plan)
    history = simulate(codes, plan.start - timedelta(days=plan.history_days), plan.history_days * 1440, seed=plan.seed)
    rows = compute_criteria(at_cadence(history.readings, plan.cadence_minutes), Parameters.from_settings())
    baselines = rows[rows["metric"] == "flow"].groupby("sensor")["night_baseline"].first()
    cadence = sensor_cadences(rows)
    faults = fault_plan(plan)
    report: dict[str, Any] = {"plan": {**plan.__dict__, "start": plan.start.isoformat(), "faults": len(faults)}}
    for label, injected in (("faults", faults), ("clean", [])):
        result = simulate(codes, plan.start, plan.days * 1440, seed=plan.seed, faults=injected)
        readings = at_cadence(result.readings, plan.cadence_minutes)
        frame = minute_inputs(readings.copy(), rows)
        nights = night_streaks(readings, baselines, cadence)
        events = to_events(frame, evaluate_methods(frame, nights))
        sensor_weeks = plan.sensors * plan.days / 7
        if label == "faults":
            report["faults"] = score(events, result.truth, faults, plan)
            report["faults"]["false_events_per_sensor_week"] = round(
                report["faults"]["unmatched_events"] / sensor_weeks, 4
            )
            report["leaks"] = leak_nights(nights, events, faults)
        else:
            report["clean"] = {
                "events": len(events),
                "by_method": {
                    f"{metric}.{method}": int(count)
                    for (metric, method), count in events.groupby(["metric", "method"]).size().items()
                },
                "false_events_per_sensor_week": round(len(events) / sensor_weeks, 4),
            }
    report["settings"] = {
        name: getattr(settings, name)
        for name in (
            "ANOMALY_VALUE_K", "ANOMALY_IQR_FENCE", "ANOMALY_GAP_MINUTES", "ANOMALY_STUCK_MINUTES",
            "ANOMALY_STUCK_READINGS", "ANOMALY_CLEAN_MINUTES", "ANOMALY_NIGHT_MARGIN", "ANOMALY_NIGHT_NIGHTS",
        )
    }  # fmt: skip
    return report


def as_json(report: dict[str, Any]) -> str:
    return json.dumps(report, default=str, sort_keys=True)
