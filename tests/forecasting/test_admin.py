"""Admin actions: activate only a version whose artifact loads; deactivate falls back to the baseline."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client

from forecasting.models import ModelVersion, TrainingRun
from forecasting.services import registry
from forecasting.services.forecaster import Forecaster
from forecasting.services.model import build_model

from .conftest import START

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "not-used-here"))
    return client


def version(**fields: object) -> ModelVersion:
    return ModelVersion.objects.create(
        metric="flow", data_start=START, data_end=START, validation_start=START, mae=1.0, baseline_mae=2.0, **fields
    )


def act(client: Client, model: str, action: str, ids: list[int]) -> str:
    """Run an admin action; returns the messages it left for the user."""
    response = client.post(f"/admin/forecasting/{model}/", {"action": action, "_selected_action": ids, "index": 0})
    assert response.status_code == 302
    return " | ".join(str(message) for message in get_messages(response.wsgi_request))


def test_activate_loads_the_artifact_first(admin_client: Client, tiny_training: Path) -> None:
    good = version(status="rejected")
    registry.save_artifact(
        good,
        SimpleNamespace(model=Forecaster("lstm", lstm=build_model(4)), scalers={}, params={"time_zone": "UTC"}),  # type: ignore[arg-type]
    )
    broken = version(status="retired", artifact_dir="flow/missing")

    page = act(admin_client, "modelversion", "activate_versions", [broken.pk])
    assert "not activated" in page
    broken.refresh_from_db()
    assert broken.status == "retired"

    assert "now serves flow" in act(admin_client, "modelversion", "activate_versions", [good.pk])
    good.refresh_from_db()
    assert good.status == "active"
    assert "admin" in good.reason

    act(admin_client, "modelversion", "deactivate_versions", [good.pk])
    good.refresh_from_db()
    assert good.status == "retired"
    assert registry.active_model("flow") is None


def test_train_again_queues_a_new_run(admin_client: Client) -> None:
    run = TrainingRun.objects.create(metrics=["pressure"], status="failed", epochs=4)
    act(admin_client, "trainingrun", "train_again", [run.pk])
    new = TrainingRun.objects.exclude(pk=run.pk).get()
    assert (new.metrics, new.epochs, new.status, new.requested_by) == (["pressure"], 4, "queued", "admin")
