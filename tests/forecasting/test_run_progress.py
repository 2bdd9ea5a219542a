"""A running training run shows how far it is (the console's progress bar), then its results replace that."""

from __future__ import annotations

import pytest

from forecasting.models import TrainingRun
from forecasting.services import runs


@pytest.mark.django_db
def test_progress_is_recorded_while_running_only() -> None:
    run = runs.new_run(["flow", "pressure"], requested_by="test")
    record = runs.progress_recorder(run.pk, "pressure", 2, 2)
    record(1, 20, {"loss": 0.1234567})
    run.refresh_from_db()
    assert run.summary == {}  # still queued: nothing to show
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING)
    record(3, 20, {"loss": 0.1234567})
    run.refresh_from_db()
    assert run.summary == {
        "progress": {"metric": "pressure", "position": 2, "metrics": 2, "epoch": 3, "epochs": 20, "loss": 0.123457}
    }
    runs._finish(run, {"pressure": {"version": 7}}, [])
    run.refresh_from_db()
    assert run.summary == {"pressure": {"version": 7}}
