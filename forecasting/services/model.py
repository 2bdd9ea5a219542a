"""The Keras model: a direct 168-hour forecaster (an LSTM over the recent hours + per-hour seasonal candidates).

Why this shape (DESIGN.md, measured): feeding predictions back step by step is slow and drifts; one
forward pass that outputs all 168 hours from hourly inputs takes ~0.1 s for 7 days.

For every target hour the window function gathers what a forecaster would weigh: the same hour last week
(seasonal naive), the week before, yesterday's, and means of that hour of day over 7 and 14 days and over
the past 14 days of the same kind (working day or weekend, local time). The forecast starts from that
same-kind mean (a smoothed seasonal profile: on the simulator it alone is ~0.76 x naive's MAE) and a head
shared by all 168 hours adds a correction from the candidates and the LSTM's state of the last two days
(level shifts, recent dynamics). The correction starts at zero, so training starts from the profile.

TensorFlow is imported inside functions only, so web, beat and workers start fast.
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
from .series import (
    HORIZON_HOURS,
    LAG_HOURS,
    SEQ_HOURS,
    HourlySeries,
    Scaler,
    fill_gaps,
    horizon_errors,
    validation_start,
)

logger = logging.getLogger(__name__)

FEATURES = 7  # value, observed, sin/cos hour of day, sin/cos day of week, weekend
VALIDATION_STEP_HOURS = 24  # one validation origin per day per series
# Tried during development on one simulated sensor-year: batch 128 at 2e-3 reached a lower validation MAE
# in the same wall time than batches of 256-512 at 3e-4 to 3e-3.
LEARNING_RATE = 2e-3


@dataclass
class Panel:
    """Many hourly series laid end to end in flat float32 arrays, the layout the tf.data windows index."""

    keys: list[str]
    offsets: np.ndarray  # first flat position of each series
    lengths: np.ndarray
    starts: list[pd.Timestamp]
    scalers: list[Scaler]
    filled: np.ndarray  # scaled, gaps filled
    observed: np.ndarray  # 1.0 observed, 0.0 filled
    target: np.ndarray  # scaled, NaN where unobserved
    calendar: np.ndarray  # (N, 5): sin/cos hour of day, sin/cos day of week, weekend (local time)

    def global_origins(self, series_index: int, positions: np.ndarray) -> np.ndarray:
        return self.offsets[series_index] + positions


def build_panel(series: list[HourlySeries], scalers: list[Scaler], time_zone: str, pad_hours: int = 0) -> Panel:
    """Flatten series (each optionally padded with `pad_hours` unknown hours at its end, for forecasting).

    Calendar features are in local time (`time_zone`): demand follows the local clock, DST included.
    """
    filled_parts, observed_parts, target_parts, calendar_parts = [], [], [], []
    lengths = []
    for item, scaler in zip(series, scalers, strict=True):
        values = np.concatenate([item.values, np.full(pad_hours, np.nan)])
        scaled = scaler.transform(values)
        filled, observed = fill_gaps(scaled)
        filled_parts.append(filled)
        observed_parts.append(observed)
        target_parts.append(scaled.astype(np.float32))
        local = pd.date_range(item.start, periods=len(values), freq="h").tz_convert(time_zone)
        hour_of_day = 2 * np.pi * (local.hour.to_numpy() + local.minute.to_numpy() / 60) / 24
        day_of_week = local.day_of_week.to_numpy()
        angle = 2 * np.pi * day_of_week / 7
        calendar_parts.append(
            np.stack([np.sin(hour_of_day), np.cos(hour_of_day), np.sin(angle), np.cos(angle), day_of_week >= 5], axis=1)
        )
        lengths.append(len(values))
    lengths_array = np.asarray(lengths, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths_array)[:-1]]).astype(np.int64)
    return Panel(
        keys=[item.key for item in series],
        offsets=offsets,
        lengths=lengths_array,
        starts=[item.start for item in series],
        scalers=scalers,
        filled=np.concatenate(filled_parts).astype(np.float32),
        observed=np.concatenate(observed_parts).astype(np.float32),
        target=np.concatenate(target_parts).astype(np.float32),
        calendar=np.concatenate(calendar_parts).astype(np.float32),
    )


def seasonal_offsets() -> np.ndarray:
    """(HORIZON, 14) offsets from the origin: for each target hour, the same hour of day on the 14 days before.

    Column 0 is the most recent such hour (yesterday's for the first day, further back for later ones).
    """
    horizon = np.arange(HORIZON_HOURS)[:, None]
    first_day_back = (horizon // 24) + 1
    return horizon - 24 * (first_day_back + np.arange(LAG_HOURS // 24)[None, :])


def window_fn(panel: Panel) -> Callable[[Any], tuple[dict[str, Any], Any]]:
    """A tf function mapping a batch of flat origin positions to (model inputs, scaled targets).

    An origin is the first predicted hour: inputs are the LAG_HOURS before it, targets the HORIZON after.
    For every target hour the candidates a forecaster would weigh are gathered: the same hour last week
    (seasonal naive) and the week before, the same hour of day yesterday and its mean over 7 and 14 days.
    """
    import tensorflow as tf

    filled = tf.constant(panel.filled)
    observed = tf.constant(panel.observed)
    target = tf.constant(panel.target)
    calendar = tf.constant(panel.calendar)
    lag_offsets = tf.range(-LAG_HOURS, 0, dtype=tf.int64)
    horizon_offsets = tf.range(0, HORIZON_HOURS, dtype=tf.int64)
    daily_columns = tf.constant(seasonal_offsets() + LAG_HOURS, dtype=tf.int64)
    week1 = tf.range(LAG_HOURS - HORIZON_HOURS, LAG_HOURS, dtype=tf.int64)
    week2 = week1 - HORIZON_HOURS
    lead = tf.cast(horizon_offsets, tf.float32) / HORIZON_HOURS

    def windows(origins: Any) -> tuple[dict[str, Any], Any]:
        lag_index = origins[:, None] + lag_offsets
        lag_values = tf.gather(filled, lag_index)
        lag_observed = tf.gather(observed, lag_index)
        seq = tf.concat(
            [
                lag_values[:, -SEQ_HOURS:, None],
                lag_observed[:, -SEQ_HOURS:, None],
                tf.gather(calendar, lag_index[:, -SEQ_HOURS:]),
            ],
            axis=-1,
        )
        same_hour = tf.gather(lag_values, daily_columns, axis=1)  # (batch, horizon, 14)
        target_calendar = tf.gather(calendar, origins[:, None] + horizon_offsets)
        # The same hour on past days of the target's kind (working day or weekend), over 14 days.
        same_kind = tf.cast(
            tf.equal(
                tf.gather(calendar[:, 4], origins[:, None, None] + daily_columns - LAG_HOURS),
                target_calendar[:, :, 4:5],
            ),
            tf.float32,
        )
        same_kind_mean = tf.reduce_sum(same_hour * same_kind, axis=-1) / tf.maximum(
            tf.reduce_sum(same_kind, axis=-1), 1.0
        )
        naive = tf.gather(lag_values, week1, axis=1)
        batch = tf.shape(origins)[0]
        candidates = tf.stack(
            [
                naive,
                tf.gather(lag_values, week2, axis=1),
                same_hour[:, :, 0],
                tf.reduce_mean(same_hour[:, :, :7], axis=-1),
                tf.reduce_mean(same_hour, axis=-1),
                same_kind_mean,
                tf.gather(lag_observed, week1, axis=1),
                tf.gather(lag_observed, week2, axis=1),
                tf.broadcast_to(lead[None, :], [batch, HORIZON_HOURS]),
            ],
            axis=-1,
        )
        hours = tf.concat([candidates, target_calendar], axis=-1)
        inputs = {"seq": seq, "hours": hours, "anchor": same_kind_mean}
        return inputs, tf.gather(target, origins[:, None] + horizon_offsets)

    return windows


NAIVE_CANDIDATE = 0  # the seasonal-naive value is the first per-hour candidate
HOUR_FEATURES = 14  # 9 candidates/flags/lead + 5 calendar features of the target hour


def masked_mae(y_true: Any, y_pred: Any) -> Any:
    """Mean absolute error over observed target hours only (NaN targets are gaps, not zeros)."""
    import tensorflow as tf

    observed = tf.math.is_finite(y_true)
    errors = tf.where(observed, tf.abs(y_pred - tf.where(observed, y_true, 0.0)), 0.0)
    return tf.reduce_sum(errors) / tf.maximum(tf.reduce_sum(tf.cast(observed, errors.dtype)), 1.0)


def build_model(units: int) -> Any:
    """An LSTM encodes the last two days; a head shared by all 168 target hours turns that state and the hour's
    seasonal candidates into a correction of the same-kind seasonal profile (zero at start).
    """
    import keras

    seq = keras.Input((SEQ_HOURS, FEATURES), name="seq")
    hours = keras.Input((HORIZON_HOURS, HOUR_FEATURES), name="hours")
    anchor = keras.Input((HORIZON_HOURS,), name="anchor")
    state = keras.layers.LSTM(units, name="lstm")(seq)
    context = keras.layers.RepeatVector(HORIZON_HOURS, name="context")(state)
    joined = keras.layers.Concatenate(name="joined")([hours, context])
    hidden = keras.layers.Dense(64, activation="relu", name="hidden")(joined)
    nonlinear = keras.layers.Dense(1, kernel_initializer="zeros", name="nonlinear")(hidden)
    linear = keras.layers.Dense(1, kernel_initializer="zeros", name="linear")(hours)
    correction = keras.layers.Reshape((HORIZON_HOURS,), name="correction")(keras.layers.Add()([linear, nonlinear]))
    output = keras.layers.Add(name="forecast")([anchor, correction])
    return keras.Model({"seq": seq, "hours": hours, "anchor": anchor}, output, name="pipewatch_forecaster")


@dataclass
class FitResult:
    """A trained model, its scalers, and how it and seasonal naive did on the validation windows."""

    model: Any
    scalers: dict[str, Scaler]
    data_start: pd.Timestamp
    data_end: pd.Timestamp
    validation_start: pd.Timestamp
    windows: int  # training windows seen over all epochs
    pool: int  # distinct training windows available
    validation_windows: int
    epochs: int
    seconds: float
    model_errors: dict
    baseline_errors: dict
    params: dict = field(default_factory=dict)


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
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> FitResult:
    """Train across all series with a time-based validation split; measure model and baseline on it."""
    import keras
    import tensorflow as tf

    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
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
    panel = build_panel(kept, [scalers[item.key] for item in kept], time_zone)
    train_origins, val_origins = _origins(panel, validation_from)
    if train_origins.size == 0 or val_origins.size == 0:
        raise NotEnoughHistoryError(
            f"no complete training/validation window: each needs {LAG_HOURS} h of inputs and {HORIZON_HOURS} h "
            f"of targets (validation starts {validation_from:%Y-%m-%d %H:%M} UTC)"
        )
    windows = window_fn(panel)
    per_epoch = min(windows_per_epoch, train_origins.size)
    origins_tensor = tf.constant(train_origins)
    if train_origins.size <= windows_per_epoch:
        sampled = tf.data.Dataset.from_tensor_slices(origins_tensor).shuffle(
            train_origins.size, seed=seed, reshuffle_each_iteration=True
        )
    else:
        # Hourly stride pool, sampled afresh every epoch: all data is used over the epochs while an epoch
        # costs the same for 1 sensor or 100.
        sampled = (
            tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            .take(per_epoch)
            .map(lambda draw: tf.gather(origins_tensor, draw % train_origins.size))
        )
    train_data = sampled.batch(batch_size).map(windows, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
    val_data = (
        tf.data.Dataset.from_tensor_slices(val_origins)
        .batch(batch_size)
        .map(windows, num_parallel_calls=tf.data.AUTOTUNE)
        .cache()
    )

    model = build_model(units)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss=masked_mae)
    callbacks: list[Any] = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    ]
    if progress is not None:
        callbacks.append(_ProgressCallback(progress, epochs))
    history = model.fit(
        train_data, validation_data=val_data, epochs=epochs, callbacks=callbacks, shuffle=False, verbose=0
    )
    epochs_run = len(history.history.get("loss", []))

    predicted, baseline, actual = _evaluate(model, panel, val_origins, batch_size)
    return FitResult(
        model=model,
        scalers=scalers,
        data_start=min(item.start for item in kept),
        data_end=max(item.end for item in kept),
        validation_start=validation_from,
        windows=per_epoch * epochs_run,
        pool=int(train_origins.size),
        validation_windows=int(val_origins.size),
        epochs=epochs_run,
        seconds=time.perf_counter() - started,
        model_errors=horizon_errors(predicted, actual),
        baseline_errors=horizon_errors(baseline, actual),
        params={
            "units": units,
            "batch_size": batch_size,
            "windows_per_epoch": windows_per_epoch,
            "lag_hours": LAG_HOURS,
            "seq_hours": SEQ_HOURS,
            "horizon_hours": HORIZON_HOURS,
            "seed": seed,
            "series": len(kept),
            "time_zone": time_zone,
        },
    )


class _ProgressCallback:
    """Adapts Keras' epoch callbacks to a plain `progress(epoch, epochs, logs)` function."""

    def __new__(cls, progress: Callable[[int, int, dict[str, float]], None], epochs: int) -> Any:
        import keras

        class Callback(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                progress(epoch + 1, epochs, {key: float(value) for key, value in (logs or {}).items()})

        return Callback()


def _run_model(model: Any, panel: Panel, origins: np.ndarray, batch_size: int) -> tuple[np.ndarray, ...]:
    """Scaled (predictions, seasonal naive, targets) for flat origins, in batches."""
    import tensorflow as tf

    windows = window_fn(panel)
    predictions, naives, targets = [], [], []
    for begin in range(0, origins.size, batch_size):
        inputs, target = windows(tf.constant(origins[begin : begin + batch_size]))
        predictions.append(_compiled_call(model)(inputs).numpy())
        naives.append(inputs["hours"][:, :, NAIVE_CANDIDATE].numpy())
        targets.append(target.numpy())
    return np.concatenate(predictions), np.concatenate(naives), np.concatenate(targets)


def _compiled_call(model: Any) -> Any:
    """The model's forward pass as one tf.function (built once per model): ~10x faster than predict()."""
    call = getattr(model, "_pipewatch_call", None)
    if call is None:
        import tensorflow as tf

        call = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)
        model._pipewatch_call = call  # the traced call lives with its model
    return call


def _unscale(panel: Panel, origins: np.ndarray, *arrays: np.ndarray) -> list[np.ndarray]:
    series_index = np.searchsorted(panel.offsets, origins, side="right") - 1
    loc = np.array([panel.scalers[i].loc for i in series_index])[:, None]
    scale = np.array([panel.scalers[i].scale for i in series_index])[:, None]
    return [array * scale + loc for array in arrays]


def _evaluate(model: Any, panel: Panel, origins: np.ndarray, batch_size: int) -> list[np.ndarray]:
    predicted, naive, target = _run_model(model, panel, origins, batch_size)
    return _unscale(panel, origins, predicted, naive, target)


def forecast(
    model: Any | None,
    scalers: dict[str, Scaler],
    series: list[HourlySeries],
    origin: pd.Timestamp,
    time_zone: str,
    *,
    batch_size: int = 1024,
) -> dict[str, np.ndarray]:
    """168 hourly values from `origin` for each series, in original units, using only hours before `origin`.

    `model=None` gives the seasonal-naive baseline (the fallback when no model can serve). A series
    without a stored scaler (a sensor added after training) is scaled by its own recent history.
    A series with no observed hour in its input window gets no forecast (left out of the result).
    """
    known, known_scalers = [], []
    for item in series:
        window = item.until(origin)
        lag_start = origin - pd.Timedelta(hours=LAG_HOURS)
        values = window.at(pd.date_range(lag_start, periods=LAG_HOURS, freq="h"))
        if not np.isfinite(values).any():
            logger.warning("no observed hour in the %d h before %s for %s: no forecast", LAG_HOURS, origin, item.key)
            continue
        scaler = scalers.get(item.key)
        if scaler is None:
            scaler = Scaler.fit(values)
        known.append(HourlySeries(item.key, lag_start, values, item.rows))
        known_scalers.append(scaler)
    if not known:
        return {}
    panel = build_panel(known, known_scalers, time_zone, pad_hours=HORIZON_HOURS)
    origins = panel.offsets + LAG_HOURS
    if model is None:
        import tensorflow as tf

        naive = window_fn(panel)(tf.constant(origins))[0]["hours"][:, :, NAIVE_CANDIDATE].numpy()
        (values,) = _unscale(panel, origins, naive)
    else:
        predicted, _, _ = _run_model(model, panel, origins, batch_size)
        (values,) = _unscale(panel, origins, predicted)
    if not np.isfinite(values).all():
        raise ForecastError("the model produced non-finite values")
    return dict(zip(panel.keys, values, strict=True))
