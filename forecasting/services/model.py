"""The Keras candidate: a direct 168-hour forecaster (an LSTM over the recent hours + per-hour seasonal candidates).

Why this shape (DESIGN.md, measured): feeding predictions back step by step is slow and drifts; one
forward pass that outputs all 168 hours from hourly inputs takes ~0.1 s for 7 days.

For every target hour the window function gathers what a forecaster would weigh: the same hour last week
(seasonal naive), the week before, yesterday's, and means of that hour of day over 7 and 14 days and over
the past 14 days of the same kind (working day or rest day: weekend or public holiday, local time). The
forecast starts from that same-kind mean (a smoothed seasonal profile) and a head shared by all 168 hours
adds a correction from the candidates and the LSTM's state of the last two days (level shifts, recent
dynamics). The correction starts at zero, so training starts from the profile.

TensorFlow is imported inside functions only, so web, beat and workers start fast; it uses a GPU when
one is visible (nothing here pins the CPU).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from .panel import Panel, seasonal_offsets
from .series import HORIZON_HOURS, LAG_HOURS, SEQ_HOURS

logger = logging.getLogger(__name__)

FEATURES = 7  # value, observed, sin/cos hour of day, sin/cos day of week, rest day
# Tried during development on one simulated sensor-year: batch 128 at 2e-3 reached a lower validation MAE
# in the same wall time than batches of 256-512 at 3e-4 to 3e-3.
LEARNING_RATE = 2e-3


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


def fit_lstm(
    panel: Panel,
    train_origins: np.ndarray,
    val_origins: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    windows_per_epoch: int,
    units: int,
    patience: int,
    seed: int,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> tuple[Any, int]:
    """(trained Keras model, epochs run): masked MAE, early stopping on the validation windows."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
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
    return model, len(history.history.get("loss", []))


class _ProgressCallback:
    """Adapts Keras' epoch callbacks to a plain `progress(epoch, epochs, logs)` function."""

    def __new__(cls, progress: Callable[[int, int, dict[str, float]], None], epochs: int) -> Any:
        import keras

        class Callback(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                progress(epoch + 1, epochs, {key: float(value) for key, value in (logs or {}).items()})

        return Callback()


def run_lstm(model: Any, panel: Panel, origins: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Scaled (origins x 168) predictions for flat origins, in batches."""
    import tensorflow as tf

    windows = window_fn(panel)
    predictions = []
    for begin in range(0, origins.size, batch_size):
        inputs, _ = windows(tf.constant(origins[begin : begin + batch_size]))
        predictions.append(_compiled_call(model)(inputs).numpy())
    return np.concatenate(predictions)


def _compiled_call(model: Any) -> Any:
    """The model's forward pass as one tf.function (built once per model): ~10x faster than predict()."""
    call = getattr(model, "_pipewatch_call", None)
    if call is None:
        import tensorflow as tf

        call = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)
        model._pipewatch_call = call  # the traced call lives with its model
    return call
