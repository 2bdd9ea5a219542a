"""Generic anomaly detectors for any univariate series (host metrics, CSV backtests).

Every detector is streaming: `update(ts, value)` scores the new point using only the points before it
and the point itself, then learns it. The batch form `score_series` feeds the same detector point by
point, so batch and streaming scores are identical by construction (and scoring point i can never
depend on a later point). Higher scores are more anomalous; `Detector.threshold` is the score at which
an operator should be alerted.

Scores are on comparable scales: zscore and seasonal are robust z-scores (|x - centre| / (1.4826 MAD)),
iqr is the distance beyond the quartiles in IQR units, iforest and hst are in [0, 1]. The ensemble
divides each member's score by that member's threshold and takes the median, so it fires when most
members agree.

A NaN value scores NaN and is not learned (a missing sample is not evidence of anything).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

import numpy as np

MAD_TO_SIGMA = 1.4826  # MAD x this = standard deviation for normally distributed data
METHODS = ("zscore", "iqr", "seasonal", "iforest", "hst", "ensemble")


class Detector(Protocol):
    threshold: float

    def update(self, ts: datetime, value: float) -> float: ...


class _Window:
    """The last `size` learned values, as a ring buffer numpy can read without copying a deque."""

    def __init__(self, size: int) -> None:
        self.values = np.empty(size, dtype=float)
        self.size = size
        self.count = 0

    def push(self, value: float) -> None:
        self.values[self.count % self.size] = value
        self.count += 1

    def array(self) -> np.ndarray:
        return self.values[: min(self.count, self.size)]

    def __len__(self) -> int:
        return min(self.count, self.size)


def robust_z(value: float, reference: np.ndarray, min_scale: float) -> float:
    """|value - median| in robust standard deviations of `reference` (MAD floored at `min_scale`)."""
    centre = float(np.median(reference))
    scale = max(MAD_TO_SIGMA * float(np.median(np.abs(reference - centre))), min_scale)
    return abs(value - centre) / scale


class RobustZScore:
    """|x - rolling median| / (1.4826 x rolling MAD) over the previous `window` points.

    With `difference=True` it scores the step from the previous point instead of the level: jumps and
    spikes stand out even on a series whose level swings with the time of day.
    """

    def __init__(
        self,
        *,
        window: int = 288,
        min_points: int = 30,
        threshold: float = 5.0,
        min_scale: float = 1e-9,
        difference: bool = False,
    ):
        self.window = _Window(window)
        self.min_points = min_points
        self.threshold = threshold
        self.min_scale = min_scale
        self.difference = difference
        self.previous: float | None = None

    def update(self, ts: datetime, value: float) -> float:
        if math.isnan(value):
            return math.nan
        if self.difference:
            previous, self.previous = self.previous, value
            if previous is None:
                return 0.0
            value -= previous
        score = 0.0
        if len(self.window) >= self.min_points:
            reference = self.window.array()
            # A constant history (MAD 0) would make every change infinite; floor the scale relative to the level.
            floor = max(self.min_scale, 1e-3 * abs(float(np.median(reference))))
            score = robust_z(value, reference, floor)
        self.window.push(value)
        return score


class IQRFences:
    """Distance beyond the rolling quartiles in IQR units (Tukey: 1.5 = outlier, 3 = far out)."""

    def __init__(self, *, window: int = 288, min_points: int = 30, threshold: float = 3.0):
        self.window = _Window(window)
        self.min_points = min_points
        self.threshold = threshold

    def update(self, ts: datetime, value: float) -> float:
        if math.isnan(value):
            return math.nan
        score = 0.0
        if len(self.window) >= self.min_points:
            q1, q3 = np.percentile(self.window.array(), [25, 75])
            spread = max(float(q3 - q1), 1e-3 * abs(float(q1 + q3)) / 2, 1e-9)
            score = max(0.0, (value - q3) / spread, (q1 - value) / spread)
        self.window.push(value)
        return float(score)


class SeasonalResidual:
    """Robust z-score of the residual against a seasonal profile (daily or weekly, slots of `slot_minutes`).

    1. The expected value for a point is the median of the same slot in the last `periods` periods.
    2. Residuals of recent points (any slot) give the robust spread.
    3. Until a slot has been seen in `min_periods` periods, the point is scored as a plain robust z-score
       against the recent points, so a fresh detector still catches gross outliers.
    """

    def __init__(
        self,
        *,
        period: str = "daily",
        slot_minutes: int = 60,
        periods: int = 7,
        min_periods: int = 2,
        residual_window: int = 288,
        threshold: float = 5.0,
    ):
        if period not in {"daily", "weekly"}:
            raise ValueError(f"period must be daily or weekly, not {period!r}")
        self.slots_per_day = 24 * 60 // slot_minutes
        self.slot_minutes = slot_minutes
        self.weekly = period == "weekly"
        self.periods = periods
        self.min_periods = min_periods
        self.threshold = threshold
        self.profile: dict[int, deque[float]] = {}
        self.periods_seen: dict[int, deque[int]] = {}
        self.recent = _Window(residual_window)
        self.residuals = _Window(residual_window)

    def _slot(self, ts: datetime) -> int:
        slot = (ts.hour * 60 + ts.minute) // self.slot_minutes
        return slot + self.slots_per_day * ts.weekday() if self.weekly else slot

    def update(self, ts: datetime, value: float) -> float:
        if math.isnan(value):
            return math.nan
        slot = self._slot(ts)
        period_index = self._period_index(ts)
        slot_values = self.profile.setdefault(slot, deque(maxlen=self.periods * 64))
        seen_periods = self.periods_seen.setdefault(slot, deque(maxlen=self.periods))
        score = 0.0
        if len(seen_periods) >= self.min_periods:
            residual = value - float(np.median(slot_values))
            if len(self.residuals) >= 30:
                score = robust_z(residual, self.residuals.array(), max(1e-9, 1e-3 * abs(value - residual)))
            self.residuals.push(residual)
        elif len(self.recent) >= 30:
            score = robust_z(value, self.recent.array(), max(1e-9, 1e-3 * abs(value)))
        slot_values.append(value)
        if not seen_periods or seen_periods[-1] != period_index:
            seen_periods.append(period_index)
        self.recent.push(value)
        return score

    def _period_index(self, ts: datetime) -> int:
        days = ts.toordinal()
        return days // 7 if self.weekly else days


class RollingIsolationForest:
    """scikit-learn IsolationForest refitted every `refit_every` points on the last `window` points.

    Features are local, so a daily swing is not isolated but a departure from the recent shape is: the step
    from the previous point and the deviation from the median of the previous `local` points. The score is
    sklearn's anomaly score in (0, 1] (about 0.5 for ordinary points, near 1 for points isolated at once).
    """

    def __init__(
        self,
        *,
        window: int = 512,
        refit_every: int = 64,
        min_points: int = 64,
        local: int = 12,
        threshold: float = 0.75,
        seed: int = 0,
    ):
        self.refit_every = refit_every
        self.min_points = min_points
        self.threshold = threshold
        self.seed = seed
        self.features: deque[tuple[float, float]] = deque(maxlen=window)
        self.recent: deque[float] = deque(maxlen=local)
        self.model: Any = None
        self.since_fit = 0

    def update(self, ts: datetime, value: float) -> float:
        if math.isnan(value):
            return math.nan
        if not self.recent:
            self.recent.append(value)
            return 0.0
        point = (value - self.recent[-1], value - float(np.median(self.recent)))
        if self.model is None or self.since_fit >= self.refit_every:
            self._refit()
        score = 0.0 if self.model is None else float(-self.model.score_samples(np.array([point]))[0])
        self.features.append(point)
        self.recent.append(value)
        self.since_fit += 1
        return score

    def _refit(self) -> None:
        if len(self.features) < self.min_points:
            return
        from sklearn.ensemble import IsolationForest

        self.model = IsolationForest(n_estimators=50, max_samples=min(256, len(self.features)), random_state=self.seed)
        self.model.fit(np.array(self.features))
        self.since_fit = 0


class HalfSpaceTrees:
    """river's online HalfSpaceTrees on the robust z-score of the value (mapped into [0, 1]).

    HST needs features in known limits; the causal robust z-score (clipped to ±10) gives it that for any
    series, whatever its units.
    """

    def __init__(
        self, *, window: int = 288, n_trees: int = 25, height: int = 8, threshold: float = 0.95, seed: int = 0
    ):
        from river import anomaly

        self.window = _Window(window)
        self.threshold = threshold
        self.model = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=min(250, window), limits={"z": (0.0, 1.0)}, seed=seed
        )

    def update(self, ts: datetime, value: float) -> float:
        if math.isnan(value):
            return math.nan
        if len(self.window) < 30:
            self.window.push(value)
            return 0.0
        reference = self.window.array()
        centre = float(np.median(reference))
        scale = max(MAD_TO_SIGMA * float(np.median(np.abs(reference - centre))), 1e-3 * abs(centre), 1e-9)
        feature = {"z": min(max(0.5 + (value - centre) / scale / 20.0, 0.0), 1.0)}
        score = float(self.model.score_one(feature))
        self.model.learn_one(feature)
        self.window.push(value)
        return score


class Ensemble:
    """The second-highest of the members' threshold-normalised scores: fires (>= 1) when two members agree.

    Members: level z-score, step z-score, IQR fences and the daily seasonal residual. One member alone
    (a seasonal swing the level z-score mistakes for an outlier) is not enough; a spike (step + seasonal),
    a burst (level + step) or a stuck-high level (level + IQR) is.
    """

    def __init__(self, members: Sequence[Detector] | None = None, *, agree: int = 2, threshold: float = 1.0):
        self.members = (
            list(members)
            if members is not None
            else [RobustZScore(), RobustZScore(difference=True), IQRFences(), SeasonalResidual()]
        )
        if not 1 <= agree <= len(self.members):
            raise ValueError(f"agree must be between 1 and {len(self.members)}")
        self.agree = agree
        self.threshold = threshold

    def update(self, ts: datetime, value: float) -> float:
        scores = sorted((member.update(ts, value) / member.threshold for member in self.members), reverse=True)
        return math.nan if math.isnan(value) else float(scores[self.agree - 1])


FACTORIES: dict[str, Callable[..., Detector]] = {
    "zscore": RobustZScore,
    "iqr": IQRFences,
    "seasonal": SeasonalResidual,
    "iforest": RollingIsolationForest,
    "hst": HalfSpaceTrees,
    "ensemble": Ensemble,
}


def make_detector(method: str = "ensemble", **params: Any) -> Detector:
    """A fresh streaming detector; unknown methods or parameters raise ValueError with the valid choices."""
    try:
        factory = FACTORIES[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}") from None
    try:
        return factory(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for {method}: {exc}") from exc


def score_series(method: str, timestamps: Iterable[datetime], values: Iterable[float], **params: Any) -> np.ndarray:
    """Batch scores: exactly the scores the streaming detector gives point by point."""
    detector = make_detector(method, **params)
    return np.array([detector.update(ts, float(value)) for ts, value in zip(timestamps, values, strict=True)])


def episode_starts(flags: Sequence[bool] | Sequence[int] | np.ndarray, clean_points: int = 1) -> np.ndarray:
    """True where an alert episode starts: a flagged point after at least `clean_points` unflagged ones.

    Operators are alerted once per episode, not for every point inside it (the same rule events use).
    """
    flags = np.asarray(flags, dtype=bool)
    starts = np.zeros(len(flags), dtype=bool)
    quiet = clean_points  # points since the last flag; start "quiet" so the first flag opens an episode
    for index, flagged in enumerate(flags):
        if flagged:
            starts[index] = quiet >= clean_points
            quiet = 0
        else:
            quiet += 1
    return starts
