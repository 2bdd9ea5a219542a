"""forecasting's logic: series preparation, the Keras model, training, prediction, registry, backtests."""

from __future__ import annotations


class ForecastError(Exception):
    """A permanent, explainable problem (bad input, too little data): reported, never retried."""


class NotEnoughHistoryError(ForecastError):
    """Too little history to train or evaluate; the message says how much is needed."""
