"""Model versions: artifacts on disk (model + scalers, addressed by version), loading cached per process,
and the activation rule (a new version serves only if it beats seasonal naive on the same windows).
"""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..metrics import MODEL_LOAD_FAILURES
from ..models import ModelVersion
from . import ForecastError
from .forecaster import DAYS, FitResult, Forecaster
from .series import Scaler

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"  # the LSTM, when the chosen candidate uses it
BOOSTED_FILE = "boosted.joblib"  # the gradient-boosted trees, when it uses them
SCALERS_FILE = "scalers.json"  # scalers, the candidates' shares per lead day, the band, the calendar
# 4: with the series whose public holidays are rest days (`holiday_keys`); 3: a Forecaster with per-lead-day
# shares; 2: one kind (an LSTM/trees blend weight); 1: an LSTM only. Formats 1-3 still load (their shares
# are the same on every day before 3; before 4 the holidays of `holiday_country` apply to every series).
ARTIFACT_FORMAT = 4


@dataclass
class LoadedModel:
    """What prediction needs from a version: the forecaster, its scalers and its calendar time zone."""

    version_id: int
    model: Forecaster
    scalers: dict[str, Scaler]
    time_zone: str
    trained_at: float  # Unix time the version was created


class ArtifactError(ForecastError):
    """A version's files are missing or unreadable; prediction falls back to the baseline."""


def artifact_path(version: ModelVersion) -> Path:
    return Path(settings.FORECAST_MODEL_DIR) / version.artifact_dir


def save_artifact(version: ModelVersion, result: FitResult) -> None:
    """Write the forecaster's parts + scalers under <model dir>/<metric>/v<id>/ (a temp dir, then renamed)."""
    relative = f"{version.metric}/v{version.pk}"
    final = Path(settings.FORECAST_MODEL_DIR) / relative
    staging = final.with_name(final.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    forecaster = result.model
    if forecaster.lstm is not None:
        forecaster.lstm.save(staging / MODEL_FILE)
    if forecaster.boosted is not None:
        import joblib

        joblib.dump(forecaster.boosted, staging / BOOSTED_FILE)
    payload = {
        "format": ARTIFACT_FORMAT,
        "metric": version.metric,
        "version": version.pk,
        "time_zone": result.params["time_zone"],
        "kind": forecaster.kind,
        "shares": forecaster.shares,
        "band": forecaster.band,
        "band_spread": forecaster.band_spread,
        "holiday_country": forecaster.holiday_country,
        "holiday_keys": forecaster.holiday_keys,
        "exog_columns": forecaster.exog_columns,
        "scalers": {key: [scaler.loc, scaler.scale] for key, scaler in result.scalers.items()},
    }
    (staging / SCALERS_FILE).write_text(json.dumps(payload, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    version.artifact_dir = relative
    version.save(update_fields=["artifact_dir"])


_cache: dict[int, tuple[float, LoadedModel]] = {}


def _shares(payload: dict, kind: str) -> list[dict[str, float]]:
    """Per-lead-day shares (format 3), or the same on every day from a format 1/2 kind and blend weight."""
    if payload.get("shares"):
        return [{str(name): float(weight) for name, weight in day.items()} for day in payload["shares"]]
    if kind == "blend":
        weight = float(payload.get("lstm_weight", 1.0))
        return [{"lstm": weight, "boosted": 1 - weight}] * DAYS
    return [{kind: 1.0}] * DAYS


def load(version: ModelVersion) -> LoadedModel:
    """The version's model, loaded once per process (reloaded if its files changed); ArtifactError if unusable."""
    directory = artifact_path(version)
    scalers_file = directory / SCALERS_FILE
    try:
        payload = json.loads(scalers_file.read_text())
        kind = str(payload.get("kind", "lstm"))  # format 1 artifacts hold an LSTM only
        shares = _shares(payload, kind)
        serving = {name for day in shares for name in day}
        files = [scalers_file]
        if "lstm" in serving:
            files.append(directory / MODEL_FILE)
        if "boosted" in serving:
            files.append(directory / BOOSTED_FILE)
        stamp = max(path.stat().st_mtime for path in files)
    except OSError as exc:
        raise ArtifactError(f"{version}: artifact missing under {directory}") from exc
    except (ValueError, AttributeError) as exc:
        raise ArtifactError(f"{version}: {scalers_file} is unreadable: {exc}") from exc
    cached = _cache.get(version.pk)
    if cached and cached[0] == stamp:
        return cached[1]
    try:
        scalers = {key: Scaler(float(loc), float(scale)) for key, (loc, scale) in payload["scalers"].items()}
        time_zone = str(payload["time_zone"])
        forecaster = Forecaster(
            kind,
            shares=shares,
            band=[[float(low), float(high)] for low, high in payload.get("band", [])],
            band_spread=float(payload.get("band_spread", 1.0)),
            holiday_country=str(payload.get("holiday_country", "")),
            holiday_keys=[str(key) for key in payload.get("holiday_keys", scalers)],
            exog_columns=[str(name) for name in payload.get("exog_columns", [])],
        )
        if "lstm" in serving:
            import keras

            forecaster.lstm = keras.models.load_model(directory / MODEL_FILE, compile=False)
        if "boosted" in serving:
            import joblib

            forecaster.boosted = joblib.load(directory / BOOSTED_FILE)
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        EOFError,
        AttributeError,
        ImportError,
        zipfile.BadZipFile,
        pickle.UnpicklingError,
    ) as exc:
        raise ArtifactError(f"{version}: artifact under {directory} is unreadable: {exc}") from exc
    loaded = LoadedModel(version.pk, forecaster, scalers, time_zone, version.created_at.timestamp())
    _cache[version.pk] = (stamp, loaded)
    return loaded


def active_model(metric: str) -> LoadedModel | None:
    """The active version's model, or None (no active version, or its artifact is broken: logged, counted)."""
    version = ModelVersion.objects.filter(metric=metric, status=ModelVersion.Status.ACTIVE).first()
    if version is None:
        return None
    try:
        return load(version)
    except ArtifactError:
        MODEL_LOAD_FAILURES.labels(metric=metric).inc()
        logger.exception("active model %s unusable: serving the seasonal-naive baseline for %s", version, metric)
        return None


def decide(version: ModelVersion) -> ModelVersion:
    """Activate `version` if its validation MAE beats seasonal naive's, else reject it; record why.

    The previous active version (if any) is retired only when the new one takes over.
    """
    if version.mae is None or version.baseline_mae is None:
        return _reject(version, "no validation error could be measured (no observed validation hours)")
    ratio = version.mae / version.baseline_mae if version.baseline_mae else float("inf")
    if version.mae >= version.baseline_mae:
        return _reject(
            version,
            f"MAE {version.mae:.4g} does not beat seasonal naive's {version.baseline_mae:.4g} (ratio {ratio:.3f}); "
            "the previous version (or the baseline) keeps serving",
        )
    activate(version, f"MAE {version.mae:.4g} beats seasonal naive's {version.baseline_mae:.4g} (ratio {ratio:.3f})")
    return version


def _reject(version: ModelVersion, reason: str) -> ModelVersion:
    version.status = ModelVersion.Status.REJECTED
    version.reason = reason
    version.save(update_fields=["status", "reason"])
    logger.info("%s rejected: %s", version, reason)
    return version


def activate(version: ModelVersion, reason: str) -> None:
    """Make `version` the one serving its metric (the admin's activate action uses this too)."""
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(
            metric=version.metric, status=ModelVersion.Status.ACTIVE
        ).exclude(pk=version.pk).update(status=ModelVersion.Status.RETIRED)
        version.status = ModelVersion.Status.ACTIVE
        version.activated_at = timezone.now()
        version.reason = reason
        version.save(update_fields=["status", "activated_at", "reason"])
    logger.info("%s activated: %s", version, reason)


def deactivate(version: ModelVersion, reason: str) -> None:
    """Stop serving `version`: its metric falls back to the seasonal-naive baseline until another is active."""
    version.status = ModelVersion.Status.RETIRED
    version.reason = reason
    version.save(update_fields=["status", "reason"])
