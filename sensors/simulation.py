"""A deterministic simulator of field sensors: realistic minute readings, injected faults, ground truth.

Pure (no I/O): the simulate_sensors command puts its frames on a pty or a TCP port and --backfill writes
its readings to the database; anomaly and forecasting evaluate themselves against its ground truth.

Profiles (in the sensors' local time): a night minimum around 03:00, a morning peak (07:30 on weekdays,
later and lower at weekends), a smaller midday plateau and an evening peak around 19:30, with 3 %
multiplicative noise. Pressure falls with the square of the flow (head loss) around a static pressure.
Everything is a function of absolute time, the sensor code and the seed, so consecutive chunks join.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from .protocol import FrameLayout, FrameReading, format_reading_frame, wrap

FAULT_KINDS = ("leak", "burst", "stuck", "spike", "dropout", "corrupt", "clock_skew")
# What `magnitude=0` means for each kind (see Fault).
DEFAULT_MAGNITUDE = {"leak": 0.5, "burst": 1.0, "spike": 3.0, "clock_skew": 7.0}
# Which series each kind disturbs, for the ground truth ("wire": frames only, not the values).
FAULT_METRICS = {
    "leak": ("flow",),
    "burst": ("flow", "pressure"),
    "stuck": ("flow", "pressure"),
    "spike": ("flow",),
    "dropout": ("flow", "pressure"),
    "corrupt": ("wire",),
    "clock_skew": ("wire",),
}
NOISE = 0.03
READING_COLUMNS = ["sensor", "ts", "flow", "pressure", "status"]
TRUTH_COLUMNS = ["sensor", "kind", "metric", "start", "end", "magnitude"]


@dataclass(frozen=True)
class Fault:
    """A fault on one sensor during [start, end).

    magnitude (0 = the kind's default): leak - night flow has risen by this fraction of the sensor's night
    minimum at `end` (linear ramp from `start`); burst - flow jumps by this fraction of the mean flow and
    pressure drops by 25 % x magnitude; spike - flow multiplied by 1 + magnitude; clock_skew - the device
    clock runs this many minutes ahead. stuck repeats the value at `start`; dropout sends nothing;
    corrupt garbles the frames on the wire.
    """

    kind: str
    sensor: str
    start: datetime
    end: datetime
    magnitude: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("fault times must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"fault {self.kind} on {self.sensor} ends before it starts")

    @property
    def effective_magnitude(self) -> float:
        return self.magnitude or DEFAULT_MAGNITUDE.get(self.kind, 0.0)


@dataclass(frozen=True)
class SensorProfile:
    """The fixed character of one simulated sensor, derived from its code and the seed."""

    mean_flow: float
    static_pressure: float
    head_loss: float


def profile_for(code: str, seed: int) -> SensorProfile:
    rng = np.random.default_rng([seed, int(code), 1])
    return SensorProfile(
        mean_flow=float(rng.uniform(20, 200)),
        static_pressure=float(rng.uniform(3.5, 6.0)),
        head_loss=float(rng.uniform(0.6, 1.4)),
    )


def _bump(hours: np.ndarray, center: float | np.ndarray, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((hours - center) / width) ** 2)


def daily_shape(local_hours: np.ndarray, weekend: np.ndarray) -> np.ndarray:
    """Demand relative to the daily mean (~1): night minimum ~0.35, morning and evening peaks."""
    morning_at = np.where(weekend, 9.5, 7.5)
    morning = np.where(weekend, 0.55, 0.9)
    shape = (
        0.35
        + morning * _bump(local_hours, morning_at, 1.3)
        + 0.35 * _bump(local_hours, 13.0, 2.5)
        + 0.7 * _bump(local_hours, 19.5, 1.8)
    )
    return shape * np.where(weekend, 0.95, 1.0) * 1.45


@dataclass
class SimulationResult:
    """`readings` (sensor, ts, flow, pressure, status), `truth` (sensor, kind, metric, start, end, magnitude)."""

    readings: pd.DataFrame
    truth: pd.DataFrame
    faults: tuple[Fault, ...] = ()
    seed: int = 0

    def frames(self, layout: FrameLayout | None = None) -> list[tuple[datetime, bytes]]:
        """The wire: (minute, frame bytes) in time then sensor order, with corrupt and clock_skew applied."""
        layout = layout or FrameLayout()
        wire_faults = [fault for fault in self.faults if fault.kind in {"corrupt", "clock_skew"}]
        rng = np.random.default_rng([self.seed, 2])
        out: list[tuple[datetime, bytes]] = []
        ordered = self.readings.sort_values(["ts", "sensor"], kind="stable")
        for sensor, ts, flow, pressure, status in ordered.itertuples(index=False, name=None):
            minute = ts.to_pydatetime()
            sent_ts = minute
            corrupt = False
            for fault in wire_faults:
                if fault.sensor == sensor and fault.start <= minute < fault.end:
                    if fault.kind == "clock_skew":
                        sent_ts = minute + timedelta(minutes=fault.effective_magnitude)
                    else:
                        corrupt = True
            frame = format_reading_frame(FrameReading(sensor, sent_ts, flow, pressure, int(status)), layout)
            if corrupt:
                frame = corrupt_frame(frame, rng)
            out.append((minute, frame))
        return out


def corrupt_frame(frame: bytes, rng: np.random.Generator) -> bytes:
    """Line noise: a flipped byte (bad checksum), a lost tail, a dropped field or garbage bytes."""
    body = frame.rstrip(b"\r\n")
    how = int(rng.integers(4))
    if how == 0:
        index = int(rng.integers(1, body.index(b"*")))
        flipped = bytes([body[index] ^ 0x01])
        return body[:index] + flipped + body[index + 1 :] + b"\r\n"
    if how == 1:
        return body[: int(rng.integers(2, len(body) - 3))] + b"\r\n"
    if how == 2:
        fields = body[1 : body.index(b"*")].decode().split(",")
        del fields[int(rng.integers(1, len(fields)))]
        return wrap(",".join(fields))
    return bytes(rng.integers(0, 256, size=int(rng.integers(5, 60)), dtype=np.uint8)).replace(b"\n", b"") + b"\r\n"


def _minute_floor(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("simulation start must be timezone-aware")
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _clean_values(profile: SensorProfile, index: pd.DatetimeIndex, time_zone: str) -> tuple[np.ndarray, np.ndarray]:
    local = index.tz_convert(time_zone)
    hours = np.asarray(local.hour + local.minute / 60.0, dtype=float)
    weekend = np.asarray(local.day_of_week >= 5)
    flow = profile.mean_flow * daily_shape(hours, weekend)
    pressure = profile.static_pressure - profile.head_loss * (flow / profile.mean_flow) ** 2 * 0.5
    return flow, pressure


def _night_minimum(profile: SensorProfile) -> float:
    return profile.mean_flow * float(daily_shape(np.array([3.0]), np.array([False]))[0])


def simulate(
    codes: list[str],
    start: datetime,
    minutes: int,
    *,
    seed: int = 0,
    faults: Sequence[Fault] = (),
    time_zone: str = "Asia/Seoul",
) -> SimulationResult:
    """`minutes` minutes of readings for every code from `start` (floored to the minute). Deterministic."""
    first = _minute_floor(start)
    index = pd.date_range(first, periods=max(minutes, 0), freq="min", tz=UTC)
    epoch_minute = int(first.timestamp() // 60)
    frames: list[pd.DataFrame] = []
    for code in codes:
        profile = profile_for(code, seed)
        flow, pressure = _clean_values(profile, index, time_zone)
        # One noise stream per metric: a shorter run from the same start is a prefix of a longer one.
        flow_noise = np.random.default_rng([seed, int(code), epoch_minute, 0]).standard_normal(len(index))
        pressure_noise = np.random.default_rng([seed, int(code), epoch_minute, 1]).standard_normal(len(index))
        flow = flow * (1 + NOISE * flow_noise)
        pressure = pressure * (1 + NOISE / 3 * pressure_noise)
        keep = np.ones(len(index), dtype=bool)
        for fault in faults:
            if fault.sensor != code:
                continue
            window = np.asarray((index >= fault.start) & (index < fault.end))
            if not window.any():
                continue
            magnitude = fault.effective_magnitude
            if fault.kind == "leak":
                span = (fault.end - fault.start).total_seconds()
                elapsed = np.asarray((index[window] - fault.start).total_seconds(), dtype=float)
                extra = magnitude * _night_minimum(profile) * elapsed / span
                flow[window] += extra
                pressure[window] -= profile.head_loss * 0.5 * (extra / profile.mean_flow)
            elif fault.kind == "burst":
                flow[window] += magnitude * profile.mean_flow
                pressure[window] *= 1 - 0.25 * magnitude
            elif fault.kind == "spike":
                flow[window] *= 1 + magnitude
            elif fault.kind == "stuck":
                stuck_flow, stuck_pressure = _clean_values(profile, pd.DatetimeIndex([fault.start]), time_zone)
                flow[window] = round(float(stuck_flow[0]), 3)
                pressure[window] = round(float(stuck_pressure[0]), 3)
            elif fault.kind == "dropout":
                keep &= ~window
        frames.append(
            pd.DataFrame(
                {
                    "sensor": code,
                    "ts": index[keep],
                    "flow": np.round(np.clip(flow[keep], 0, None), 3),
                    "pressure": np.round(np.clip(pressure[keep], 0, None), 3),
                    "status": 0,
                }
            )
        )
    readings = (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=READING_COLUMNS)).sort_values(
        ["ts", "sensor"], kind="stable", ignore_index=True
    )
    truth = pd.DataFrame(
        [
            (fault.sensor, fault.kind, metric, fault.start, fault.end, fault.effective_magnitude)
            for fault in faults
            if fault.sensor in codes
            for metric in FAULT_METRICS[fault.kind]
        ],
        columns=TRUTH_COLUMNS,
    )
    return SimulationResult(readings=readings, truth=truth, faults=tuple(faults), seed=seed)
