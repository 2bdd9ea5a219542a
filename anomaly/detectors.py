"""Generic anomaly detectors for any univariate series (host metrics, CSV backtests).

Every detector is streaming: `update(ts, value)` scores the new point using only the points before it
and the point itself, then learns it. The batch form `score_series` feeds the same detector point by
point, so batch and streaming scores are identical by construction (and scoring point i can never
depend on a later point). Higher scores are more anomalous; `Detector.threshold` is the score at which
an operator should be alerted.

Scores are on comparable scales: zscore and seasonal are robust z-scores (|x - centre| / (1.4826 MAD)),
iqr is the distance beyond the quartiles in IQR units, iforest and hst are in [0, 1]. The ensemble
divides each member's score by that member's threshold and takes the second-highest, so it fires when
two members agree. The default, likelihood, turns raw scores into how improbable they are under their
own recent distribution (Numenta's anomaly likelihood), so it adapts to each series' noise instead of
using one absolute scale: it is the method measured on real data (NAB, docs/anomaly-detection.md).

A NaN value scores NaN and is not learned (a missing sample is not evidence of anything).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from scipy.spatial.distance import cdist

MAD_TO_SIGMA = 1.4826  # MAD x this = standard deviation for normally distributed data
METHODS = ("likelihood", "zscore", "iqr", "seasonal", "iforest", "hst", "ensemble")
DEFAULT_METHOD = "likelihood"  # NAB dev set, fixed threshold: 71.5 (23 real files), 69.4 (all 34)


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


class _RunningMoments:
    """Mean and standard deviation of the last `size` values in O(1) per value (sums over a ring buffer).

    The sums are recomputed from the buffer once per `size` values so float drift cannot accumulate.
    """

    def __init__(self, size: int) -> None:
        self.window = _Window(size)
        self.total = 0.0
        self.squares = 0.0

    def push(self, value: float) -> None:
        window = self.window
        if window.count >= window.size:
            old = float(window.values[window.count % window.size])
            self.total -= old
            self.squares -= old * old
        window.push(value)
        self.total += value
        self.squares += value * value
        if window.count % window.size == 0:
            values = window.array()
            self.total, self.squares = float(values.sum()), float((values * values).sum())

    def __len__(self) -> int:
        return len(self.window)

    def mean_std(self) -> tuple[float, float]:
        count = min(self.window.count, self.window.size)
        mean = self.total / count
        return mean, math.sqrt(max(self.squares / count - mean * mean, 0.0))


class WindowedGaussian:
    """|x - mean| / std of the previous `window` values: the raw "how unusual is this level" score."""

    def __init__(self, *, window: int = 1000, min_points: int = 30, threshold: float = 4.0) -> None:
        self.moments = _RunningMoments(window)
        self.min_points = min_points
        self.threshold = threshold

    def update(self, ts: datetime, value: float) -> float:
        if math.isnan(value):
            return math.nan
        score = 0.0
        if len(self.moments) >= self.min_points:
            mean, std = self.moments.mean_std()
            score = abs(value - mean) / max(std, 1e-9, 1e-6 * abs(mean))
        self.moments.push(value)
        return score


class SubsequenceKNN:
    """Contextual nearest neighbours (after KNN-CAD / CAD-OSE): how unlike anything seen before is the shape
    of the last `length` values?

    The score is the mean L1 distance (per value, in units of the range seen so far) from the current
    subsequence to its `k` nearest neighbours among the previous `reference` subsequences. Subsequences that
    overlap the current one are kept out of the reference (they would always be near neighbours).
    """

    def __init__(self, *, length: int = 6, reference: int = 1000, k: int = 3, min_reference: int = 50) -> None:
        self.length = length
        self.k = k
        self.min_reference = min_reference
        self.reference = np.empty((reference, length))
        self.stored = 0
        self.recent: deque[float] = deque(maxlen=length)
        self.pending: deque[np.ndarray] = deque(maxlen=length)
        self.low = math.inf
        self.high = -math.inf
        self.threshold = math.inf  # only meaningful through AnomalyLikelihood

    def update(self, ts: datetime, value: float) -> float:
        if math.isnan(value):
            return math.nan
        self.low, self.high = min(self.low, value), max(self.high, value)
        self.recent.append(value)
        if len(self.recent) < self.length:
            return 0.0
        current = np.array(self.recent)
        known = min(self.stored, len(self.reference))
        score = 0.0
        if known >= self.min_reference:
            distances = cdist(current[np.newaxis], self.reference[:known], "cityblock")[0]  # 3x numpy's abs().sum()
            nearest = float(np.partition(distances, self.k - 1)[: self.k].sum())  # .mean() costs 2x the cdist
            score = nearest / (self.k * self.length * max(self.high - self.low, 1e-9))
        self.pending.append(current)
        if len(self.pending) == self.length:  # the oldest pending one no longer overlaps the current subsequence
            self.reference[self.stored % len(self.reference)] = self.pending[0]
            self.stored += 1
        return score


class AnomalyLikelihood:
    """Numenta's anomaly likelihood over any raw score: how improbable is the mean of the last `short` raw
    scores under the distribution (mean, std) of the last `history` such means?

    Returned as log10(tail probability) / -10, clipped to [0, 1]: 0.5 means a tail probability of 1e-5
    (Numenta's published threshold). The raw score's own units and scale no longer matter, and a series
    whose raw score is always high (noisy) stops alarming after the first `learning` points, which only
    learn.
    """

    def __init__(
        self, raw: Detector, *, short: int = 10, history: int = 8640, learning: int = 288, threshold: float = 0.5
    ) -> None:
        self.raw = raw
        self.recent: deque[float] = deque(maxlen=short)
        self.moments = _RunningMoments(history)
        self.learning = learning
        self.threshold = threshold

    def update(self, ts: datetime, value: float) -> float:
        raw = self.raw.update(ts, value)
        if math.isnan(raw):
            return math.nan
        self.recent.append(raw)
        average = sum(self.recent) / len(self.recent)
        score = 0.0
        if len(self.moments) >= self.learning:
            mean, std = self.moments.mean_std()
            z = (average - mean) / max(std, 1e-6, 1e-3 * abs(mean))
            tail = 0.5 * math.erfc(z / math.sqrt(2))
            score = min(1.0, math.log10(max(tail, 1e-300)) / -10.0)
        self.moments.push(average)
        return score


class NewExtreme:
    """1 when a value leaves the range seen so far by more than `tolerance` of that range (Numenta's "spatial
    anomaly"): a new record low or high is news even when the likelihood has not yet learned to expect it."""

    def __init__(self, *, tolerance: float = 0.05, learning: int = 288, threshold: float = 1.0) -> None:
        self.tolerance = tolerance
        self.learning = learning
        self.threshold = threshold
        self.seen = 0
        self.low = math.inf
        self.high = -math.inf

    def update(self, ts: datetime, value: float) -> float:
        if math.isnan(value):
            return math.nan
        margin = self.tolerance * (self.high - self.low)
        score = float(self.seen >= self.learning and (value > self.high + margin or value < self.low - margin))
        self.seen += 1
        self.low, self.high = min(self.low, value), max(self.high, value)
        return score


class Likelihood:
    """The default: the highest of (1) the anomaly likelihood of the windowed Gaussian score (unusual level),
    (2) the anomaly likelihood of the subsequence nearest-neighbour score (unusual shape), each divided by its
    threshold, and (3) a new extreme (1 = threshold)."""

    def __init__(self, *, threshold: float = 1.0, likelihood_threshold: float = 0.5) -> None:
        self.members: list[Detector] = [
            AnomalyLikelihood(WindowedGaussian(), threshold=likelihood_threshold),
            AnomalyLikelihood(SubsequenceKNN(), threshold=likelihood_threshold),
            NewExtreme(),
        ]
        self.threshold = threshold

    def update(self, ts: datetime, value: float) -> float:
        if math.isnan(value):
            return math.nan
        level, shape, extreme = self.members
        return max(level.update(ts, value) / level.threshold, shape.update(ts, value) / shape.threshold,
                   extreme.update(ts, value) / extreme.threshold)  # fmt: skip


FACTORIES: dict[str, Callable[..., Detector]] = {
    "likelihood": Likelihood,
    "zscore": RobustZScore,
    "iqr": IQRFences,
    "seasonal": SeasonalResidual,
    "iforest": RollingIsolationForest,
    "hst": HalfSpaceTrees,
    "ensemble": Ensemble,
}


def make_detector(method: str = DEFAULT_METHOD, **params: Any) -> Detector:
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


def alarms(
    method: str, timestamps: Sequence[datetime], values: np.ndarray, clean_points: int, **params: Any
) -> tuple[np.ndarray, np.ndarray, float]:
    """(scores, episode starts, threshold) for one series fed in time order; results are in input order.

    The one scoring loop behind `detect_csv` and the NAB-style evaluation, so both judge the same alarms.
    """
    detector = make_detector(method, **params)
    order = np.argsort(np.array([ts.timestamp() for ts in timestamps]), kind="stable")
    scores = np.full(len(values), math.nan)
    for index in order:
        scores[index] = detector.update(timestamps[index], float(values[index]))
    flagged = np.nan_to_num(scores, nan=0.0) >= detector.threshold
    starts = np.zeros(len(values), dtype=bool)
    starts[order] = episode_starts(flagged[order], clean_points=max(clean_points, 1))
    return scores, starts, detector.threshold


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
