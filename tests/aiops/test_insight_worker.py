"""Real workers: the automatic explanation runs on the insight queue, so a slow model never delays
`anomaly.detect_minute` (which a detect worker runs meanwhile, in seconds)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from aiops.insight.llm_simulator import SimulatorState, start_server
from aiops.insight.models import Insight, InsightSource
from anomaly.tasks import detect_minute

from ..conftest import ChildProcess, wait_for
from .insight_helpers import alert, incident_of

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SLOW = 20.0


def test_slow_llm_does_not_delay_detection(celery_worker: Callable[..., ChildProcess]) -> None:
    state = SimulatorState(flavour="ollama", script=[f"slow:{SLOW}"])
    httpd, url = start_server(state)
    env = {"INSIGHT_LLM_URL": url, "INSIGHT_LLM_MODEL": "sim", "INSIGHT_LLM_TIMEOUT_SECONDS": "30"}
    try:
        celery_worker(queues="insight", env=env)
        celery_worker(queues="default,detect", env=env)
        detect_minute.delay().get(timeout=60)  # warm: the first run loads the initial criteria
        incident = incident_of(alert("PipewatchWorkerDown"))  # opening it queues the automatic explanation
        wait_for(lambda: state.requests, timeout=30, what="the insight worker to call the LLM")
        asked = time.monotonic()
        started = time.monotonic()
        detect_minute.delay().get(timeout=SLOW - 5)  # done while the model is still "thinking"
        took = time.monotonic() - started
        assert not Insight.objects.filter(incident=incident, source=InsightSource.LLM).exists(), took
        wait_for(
            lambda: Insight.objects.filter(incident=incident, source=InsightSource.LLM, error="").exists(),
            timeout=40,
            what="the LLM's insight",
        )
        assert time.monotonic() - asked >= SLOW - 1
        assert Insight.objects.filter(incident=incident, source=InsightSource.RULES).count() == 1
    finally:
        httpd.shutdown()
        httpd.server_close()
