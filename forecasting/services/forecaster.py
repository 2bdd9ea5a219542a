"""Training and serving the forecast: candidates chosen per metric on validation, with a calibrated band.

1. One panel of all series (per-series scaling on training hours, local calendar with public holidays
   as rest days in the series whose history shows them behaving like Sundays, optional exogenous
   inputs).
2. Candidates, each fitted on the training windows only: the seasonal profile (level x shape,
   profile.py; no fitting), gradient-boosted trees correcting it (boosting.py) and, opt-in, the LSTM
   (model.py).
3. Each candidate forecasts the same validation windows (daily origins in the last 20 % of the time
   range); per lead day the candidate or pair of candidates (shares BLEND_WEIGHTS) with the lowest MAE
   serves. The registry activates the mix only if it beats seasonal naive on those windows
   (registry.decide); every candidate's figures are kept with the version.
4. The 10 % / 90 % band: quantiles of the chosen mix's validation residuals per lead day, each
   residual divided by the series' recent week-on-week spread (the mean |value - value a week earlier|
   over the week before the origin). The band so widens in volatile weeks and narrows in calm ones:
   with plain scaled residuals it covered 60 % of the BWDF summer test hours, normalised 78 % (target
   80 %; the spring validation weeks were calmer than the summer).
5. The trees are cheap, so when they serve they are refitted on training + validation
   windows: the latest months carry the current pattern. The LSTM keeps its early-stopped weights.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import ForecastError, NotEnoughHistoryError
from .boosting import fit_boosted, predict_boosted, profile
from .calendar import keeps_holidays
from .model import fit_lstm, run_lstm
from .panel import Panel, build_panel
from .series import (
    HISTORY_HOURS,
    HORIZON_HOURS,
    LAG_HOURS,
    HourlySeries,
    Scaler,
    horizon_errors,
    validation_start,
)

logger = logging.getLogger(__name__)

VALIDATION_STEP_HOURS = 24  # one validation origin per day per series
# Per lead day, every candidate alone and every pair at these shares is tried on validation.
BLEND_WEIGHTS = (0.25, 0.5, 0.75)
DAYS = HORIZON_HOURS // 24
BAND_QUANTILES = (0.1, 0.9)
# A forecast whose last day of inputs has a gap is flagged degraded: the first hours lean on that day.
DEGRADED_LOOKBACK_HOURS = 24
TRAINED_KINDS = ("lstm", "boosted")  # what FORECAST_CANDIDATES may name


@dataclass
class Forecaster:
    """What serves a metric: the chosen candidate, its fitted parts and its calibrated band."""

    kind: str  # profile, lstm or boosted when one candidate serves every lead day, else blend
    lstm: Any | None = None  # Keras model
    boosted: Any | None = None  # HistGradientBoostingRegressor
    shares: list[dict[str, float]] = field(default_factory=list)  # per lead day, each candidate's weight
    band: list[list[float]] = field(default_factory=list)  # per lead day [q10, q90] of residual / spread
    band_spread: float = 1.0  # the median validation spread: stands in where a window has none
    holiday_country: str = ""
    holiday_keys: list[str] = field(default_factory=list)  # series whose holidays are rest days (keeps_holidays)
    exog_columns: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.shares:
            self.shares = [{self.kind: 1.0}] * DAYS  # one candidate on every lead day

    def predict_scaled(self, panel: Panel, origins: np.ndarray) -> np.ndarray:
        """Scaled (origins x 168) forecasts: each lead day the candidates mixed by their shares."""
        needed = {name for day in self.shares for name, weight in day.items() if weight > 0}
        parts = {name: self._candidate(name, panel, origins) for name in sorted(needed)}
        return mix(parts, self.shares, origins.size)

    def _candidate(self, name: str, panel: Panel, origins: np.ndarray) -> np.ndarray:
        if name == "profile":
            return profile(panel, origins)
        if name == "lstm":
            return run_lstm(self.lstm, panel, origins)
        if name == "boosted":
            return predict_boosted(self.boosted, panel, origins)
        raise ForecastError(f"unknown forecast candidate {name!r}")

    def bounds(self, panel: Panel, origins: np.ndarray, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Scaled (lower, upper) around the scaled forecasts; None without a calibrated band."""
        if not self.band:
            return None
        per_hour = np.repeat(np.asarray(self.band, dtype=float), 24, axis=0)[:HORIZON_HOURS]
        width = recent_spread(panel, origins, self.band_spread)[:, None]
        return scaled + per_hour[None, :, 0] * width, scaled + per_hour[None, :, 1] * width


@dataclass
class FitResult:
    """A trained forecaster, its scalers, and how it and seasonal naive did on the validation windows."""

    model: Forecaster
    scalers: dict[str, Scaler]
    data_start: pd.Timestamp
    data_end: pd.Timestamp
    validation_start: pd.Timestamp
    windows: int  # training windows seen over all epochs (LSTM) + (origin, lead) rows (trees)
    pool: int  # distinct training windows available
    validation_windows: int
    epochs: int
    seconds: float
    model_errors: dict
    baseline_errors: dict
    candidates: dict[str, dict] = field(default_factory=dict)  # validation errors of every candidate
    coverage: float | None = None  # share of validation hours inside the band (in-sample: it was fitted there)
    params: dict = field(default_factory=dict)


def mix(parts: dict[str, np.ndarray], shares: list[dict[str, float]], rows: int) -> np.ndarray:
    """Per lead day, the candidates' forecasts weighted by that day's shares."""
    out = np.zeros((rows, HORIZON_HOURS), np.float32)
    for day, weights in enumerate(shares):
        hours = slice(day * 24, (day + 1) * 24)
        for name, weight in weights.items():
            if weight > 0:
                out[:, hours] += weight * parts[name][:, hours]
    return out


def choose_shares(parts: dict[str, np.ndarray], actual: np.ndarray) -> list[dict[str, float]]:
    """Per lead day, the candidate or pairwise blend with the lowest validation MAE (original units).

    Why per day: the trees (and the LSTM) read the last hours and help most on day 1; by days 5-7 the
    seasonal profile is often as good and steadier (docs/forecasting.md has the figures).
    """
    options = [{name: 1.0} for name in parts]
    names = sorted(parts)
    for index, first in enumerate(names):
        for second in names[index + 1 :]:
            options += [{first: weight, second: 1 - weight} for weight in BLEND_WEIGHTS]
    shares = []
    for day in range(DAYS):
        hours = slice(day * 24, (day + 1) * 24)
        errors = [
            np.nanmean(np.abs(sum(w * parts[name][:, hours] for name, w in option.items()) - actual[:, hours]))
            for option in options
        ]
        shares.append(options[int(np.nanargmin(errors)) if np.isfinite(errors).any() else 0])
    return shares


def _origins(panel: Panel, validation_from: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """Flat training origins (every hour whose whole horizon ends before validation) and validation ones."""
    train, val = [], []
    for index, start in enumerate(panel.starts):
        length = int(panel.lengths[index])
        cut = int((validation_from - start) / pd.Timedelta(hours=1))
        last_origin = length - HORIZON_HOURS  # the horizon must fit inside the series
        train.append(panel.global_origins(index, np.arange(LAG_HOURS, min(cut - HORIZON_HOURS, last_origin) + 1)))
        val.append(panel.global_origins(index, np.arange(max(cut, LAG_HOURS), last_origin + 1, VALIDATION_STEP_HOURS)))
    return np.concatenate(train).astype(np.int64), np.concatenate(val).astype(np.int64)


def _targets(panel: Panel, origins: np.ndarray) -> np.ndarray:
    return panel.target[origins[:, None] + np.arange(HORIZON_HOURS)[None, :]]


def naive_scaled(panel: Panel, origins: np.ndarray) -> np.ndarray:
    """Seasonal naive (same hour last week, gaps filled by the series rules), scaled."""
    return panel.filled[origins[:, None] + np.arange(HORIZON_HOURS)[None, :] - HORIZON_HOURS]


def recent_spread(panel: Panel, origins: np.ndarray, fallback: float) -> np.ndarray:
    """Per origin, the mean |value - value a week earlier| over the week before it (scaled units)."""
    hours = origins[:, None] + np.arange(-HORIZON_HOURS, 0)[None, :]
    change = np.abs(panel.target[hours] - panel.target[hours - HORIZON_HOURS])
    observed = np.isfinite(change)
    total = np.where(observed, change, 0.0).sum(axis=1)
    count = observed.sum(axis=1)
    spread = np.divide(total, count, out=np.full(len(origins), np.nan), where=count > 0)
    return np.where(np.isfinite(spread) & (spread > 0), spread, fallback)


def calibrate_band(predicted: np.ndarray, actual: np.ndarray, spread: np.ndarray) -> list[list[float]]:
    """Per lead day, the 10 % and 90 % quantiles of (actual - predicted) / spread over observed hours."""
    residual = (actual - predicted) / spread[:, None]
    band = []
    for day in range(HORIZON_HOURS // 24):
        values = residual[:, day * 24 : (day + 1) * 24]
        values = values[np.isfinite(values)]
        if values.size == 0:
            return []
        band.append([float(np.quantile(values, BAND_QUANTILES[0])), float(np.quantile(values, BAND_QUANTILES[1]))])
    return band


def band_coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float | None:
    """Share of observed hours with lower <= actual <= upper."""
    scored = np.isfinite(actual)
    if not scored.any():
        return None
    inside = (actual >= lower) & (actual <= upper)
    return float(inside[scored].mean())


def holiday_keepers(series: list[HourlySeries], time_zone: str, country: str) -> list[str]:
    """Keys of the series whose past public holidays behaved like their Sundays (calendar.keeps_holidays).

    The whole history decides, validation months included: more holidays make a surer decision, and it
    is a fact of the site's calendar, not a parameter fitted to the validation errors.
    """
    if not country:
        return []
    keepers = []
    for item in series:
        local = pd.date_range(item.start, periods=len(item.values), freq="h").tz_convert(time_zone)
        if keeps_holidays(local, item.values, country):
            keepers.append(item.key)
    logger.info("public holidays of %s kept as rest days by %d of %d series", country, len(keepers), len(series))
    return keepers


def fit(
    series: dict[str, HourlySeries],
    *,
    epochs: int,
    batch_size: int,
    windows_per_epoch: int,
    units: int,
    patience: int,
    seed: int,
    time_zone: str,
    candidates: tuple[str, ...] = ("boosted",),
    max_tree_rows: int,
    holiday_country: str = "",
    exog: pd.DataFrame | None = None,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> FitResult:
    """Train the candidates across all series with a time-based validation split; keep the best (module doc)."""
    started = time.perf_counter()
    unknown = sorted(set(candidates) - set(TRAINED_KINDS))
    if unknown:
        raise ForecastError(f"unknown forecast candidate(s) {', '.join(unknown)}; choose from {TRAINED_KINDS}")
    usable = {key: item for key, item in series.items() if item.observed_hours() > 0}
    validation_from = validation_start(usable)
    scalers, kept = {}, []
    for key, item in usable.items():
        training_part = item.until(validation_from).values
        if not np.isfinite(training_part).any():
            logger.info("series %s has no observed hour before validation; left out of training", key)
            continue
        scalers[key] = Scaler.fit(training_part)
        kept.append(item)
    holiday_keys = holiday_keepers(kept, time_zone, holiday_country)
    panel = build_panel(
        kept,
        [scalers[item.key] for item in kept],
        time_zone,
        holiday_country=holiday_country,
        holiday_keys=holiday_keys,
        exog=exog,
    )
    train_origins, val_origins = _origins(panel, validation_from)
    if train_origins.size == 0 or val_origins.size == 0:
        raise NotEnoughHistoryError(
            f"no complete training/validation window: each needs {LAG_HOURS} h of inputs and {HORIZON_HOURS} h "
            f"of targets (validation starts {validation_from:%Y-%m-%d %H:%M} UTC)"
        )
    actual = _targets(panel, val_origins)
    chosen_parts = Forecaster(
        "profile",
        holiday_country=holiday_country,
        holiday_keys=holiday_keys,
        exog_columns=list(exog.columns) if exog is not None else [],
    )
    scaled: dict[str, np.ndarray] = {"profile": profile(panel, val_origins)}
    epochs_run = 0
    if "lstm" in candidates:
        chosen_parts.lstm, epochs_run = fit_lstm(
            panel,
            train_origins,
            val_origins,
            epochs=epochs,
            batch_size=batch_size,
            windows_per_epoch=windows_per_epoch,
            units=units,
            patience=patience,
            seed=seed,
            progress=progress,
        )
        scaled["lstm"] = run_lstm(chosen_parts.lstm, panel, val_origins)
    tree_rows = 0
    if "boosted" in candidates:
        chosen_parts.boosted, tree_rows = fit_boosted(panel, train_origins, seed=seed, max_rows=max_tree_rows)
        scaled["boosted"] = predict_boosted(chosen_parts.boosted, panel, val_origins)
    (actual_units,) = panel.unscale(val_origins, actual)
    shares = choose_shares({name: panel.unscale(val_origins, pred)[0] for name, pred in scaled.items()}, actual_units)
    serving = {name for day in shares for name in day}
    chosen_parts.shares = shares
    chosen_parts.kind = next(iter(serving)) if len(serving) == 1 else "blend"
    scaled["chosen"] = mix(scaled, shares, val_origins.size)
    errors = {name: horizon_errors(panel.unscale(val_origins, pred)[0], actual_units) for name, pred in scaled.items()}
    baseline_errors = horizon_errors(panel.unscale(val_origins, naive_scaled(panel, val_origins))[0], actual_units)
    spreads = recent_spread(panel, val_origins, 1.0)
    chosen_parts.band_spread = float(np.median(spreads))
    chosen_parts.band = calibrate_band(scaled["chosen"], actual, spreads)
    bounds = chosen_parts.bounds(panel, val_origins, scaled["chosen"])
    coverage = band_coverage(actual, *bounds) if bounds is not None else None
    if "boosted" in serving:
        chosen_parts.boosted, _ = fit_boosted(
            panel, np.concatenate([train_origins, val_origins]), seed=seed, max_rows=max_tree_rows
        )
    else:
        chosen_parts.boosted = None  # not serving: not stored
    if "lstm" not in serving:
        chosen_parts.lstm = None
    logger.info(
        "candidates on validation (MAE): %s; shares per lead day %s", {k: v["mae"] for k, v in errors.items()}, shares
    )
    return FitResult(
        model=chosen_parts,
        scalers=scalers,
        data_start=min(item.start for item in kept),
        data_end=max(item.end for item in kept),
        validation_start=validation_from,
        windows=min(windows_per_epoch, train_origins.size) * epochs_run + tree_rows,
        pool=int(train_origins.size),
        validation_windows=int(val_origins.size),
        epochs=epochs_run,
        seconds=time.perf_counter() - started,
        model_errors=errors["chosen"],
        baseline_errors=baseline_errors,
        candidates=errors,
        coverage=coverage,
        params={
            "kind": chosen_parts.kind,
            "shares": shares,
            "candidates": list(candidates),
            "units": units,
            "batch_size": batch_size,
            "windows_per_epoch": windows_per_epoch,
            "lag_hours": LAG_HOURS,
            "horizon_hours": HORIZON_HOURS,
            "seed": seed,
            "series": len(kept),
            "time_zone": time_zone,
            "holiday_country": holiday_country,
            "holiday_series": len(holiday_keys),
            "exog_columns": chosen_parts.exog_columns,
        },
    )


@dataclass
class Prediction:
    """One series' 168 hourly values from the origin, in original units, with the band where calibrated."""

    value: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    degraded: bool  # the last day of inputs had a gap (the forecast ran through it)


def forecast(
    forecaster: Forecaster | None,
    scalers: dict[str, Scaler],
    series: list[HourlySeries],
    origin: pd.Timestamp,
    time_zone: str,
    *,
    exog: pd.DataFrame | None = None,
) -> dict[str, Prediction]:
    """168 hourly values from `origin` for each series, using only hours before `origin`.

    `forecaster=None` gives the seasonal-naive baseline (the fallback when no model can serve; no band).
    A series without a stored scaler (a sensor added after training) is scaled by its own recent history.
    A series with no observed hour in the two weeks before `origin` gets no forecast (left out); gaps in
    the window are forecast through (the trees take missing lags as they are) and flagged `degraded`.
    """
    known, known_scalers, degraded = [], [], []
    history_start = origin - pd.Timedelta(hours=HISTORY_HOURS)
    for item in series:
        values = item.until(origin).at(pd.date_range(history_start, periods=HISTORY_HOURS, freq="h"))
        if not np.isfinite(values[-LAG_HOURS:]).any():
            logger.warning("no observed hour in the %d h before %s for %s: no forecast", LAG_HOURS, origin, item.key)
            continue
        scaler = scalers.get(item.key) or Scaler.fit(values[-LAG_HOURS:])
        known.append(HourlySeries(item.key, history_start, values, item.rows))
        known_scalers.append(scaler)
        degraded.append(not np.isfinite(values[-DEGRADED_LOOKBACK_HOURS:]).all())
    if not known:
        return {}
    needs_exog = forecaster is not None and bool(forecaster.exog_columns)
    if needs_exog and exog is None:
        raise ForecastError(f"this model needs exogenous inputs {forecaster.exog_columns}")  # type: ignore[union-attr]
    panel = build_panel(
        known,
        known_scalers,
        time_zone,
        pad_hours=HORIZON_HOURS,
        holiday_country=forecaster.holiday_country if forecaster else "",
        holiday_keys=forecaster.holiday_keys if forecaster else (),
        exog=exog[forecaster.exog_columns] if needs_exog and exog is not None else None,  # type: ignore[union-attr]
    )
    origins = panel.offsets + HISTORY_HOURS
    scaled = naive_scaled(panel, origins) if forecaster is None else forecaster.predict_scaled(panel, origins)
    (values,) = panel.unscale(origins, scaled)
    if not np.isfinite(values).all():
        raise ForecastError("the model produced non-finite values")
    bounds = forecaster.bounds(panel, origins, scaled) if forecaster is not None else None
    lower, upper = panel.unscale(origins, *bounds) if bounds is not None else (None, None)
    return {
        key: Prediction(
            value=values[row],
            lower=None if lower is None else lower[row],
            upper=None if upper is None else upper[row],
            degraded=degraded[row],
        )
        for row, key in enumerate(panel.keys)
    }
