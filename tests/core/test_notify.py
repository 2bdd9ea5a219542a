"""Notifications reach a real local HTTP receiver through a real worker, retried after a failure."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import override_settings

from core.notify import Alert, alertmanager_payload, notify, slack_payload
from tests.conftest import ChildProcess, wait_for


class Receiver:
    """A webhook receiver that answers each path with the next status in its script (then 200)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.script: dict[str, list[int]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.received.append((self.path, body))
                statuses = receiver.script.get(self.path, [])
                self.send_response(statuses.pop(0) if statuses else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self) -> list[str]:
        return [path for path, _ in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()


ALERT = Alert(
    key="anomaly:42",
    status="firing",
    title="Leak suspected at 017",
    text="night flow +31% for 3 nights",
    severity="critical",
    source="anomaly",
    labels={"sensor": "017", "method": "night"},
)


def test_delivery_is_retried_after_a_failure_and_deduplicated(
    receiver: Receiver, celery_worker: Callable[..., ChildProcess]
) -> None:
    hooks = {"SLACK_WEBHOOK_URL": f"{receiver.url}/slack", "ALERT_WEBHOOK_URL": f"{receiver.url}/am"}
    receiver.script = {"/slack": [500], "/am": [503]}
    celery_worker(queues="default", env=hooks)
    with override_settings(**hooks):
        assert notify(ALERT) == 2
        assert notify(ALERT) == 0  # same key and status inside the dedup window
        wait_for(lambda: sorted(receiver.paths()) == ["/am", "/am", "/slack", "/slack"], timeout=60, what="retries")
        resolved = Alert(**{**ALERT.__dict__, "status": "resolved"})
        assert notify(resolved) == 2
        wait_for(lambda: len(receiver.received) == 6, timeout=30, what="the resolve")

    slack = [body for path, body in receiver.received if path == "/slack"]
    assert slack[0] == slack[1] == slack_payload(ALERT)
    assert "[FIRING] Leak suspected at 017" in slack[0]["text"]
    assert "[RESOLVED]" in slack[2]["text"]
    alertmanager = [body for path, body in receiver.received if path == "/am"]
    assert alertmanager[0]["status"] == "firing"
    assert alertmanager[0]["alerts"][0]["labels"] == {
        "alertname": "Leak suspected at 017",
        "severity": "critical",
        "source": "anomaly",
        "sensor": "017",
        "method": "night",
    }
    assert alertmanager[2]["status"] == "resolved"


def test_permanent_rejection_is_not_retried(receiver: Receiver, celery_worker: Callable[..., ChildProcess]) -> None:
    hooks = {"SLACK_WEBHOOK_URL": f"{receiver.url}/slack"}
    receiver.script = {"/slack": [404, 404, 404]}
    worker = celery_worker(queues="default", env=hooks)
    with override_settings(SLACK_WEBHOOK_URL=hooks["SLACK_WEBHOOK_URL"], ALERT_WEBHOOK_URL=""):
        assert notify(ALERT) == 1
    wait_for(lambda: "notification rejected with HTTP 404" in worker.output(), what="the rejection log")
    assert receiver.paths() == ["/slack"]


@override_settings(SLACK_WEBHOOK_URL="", ALERT_WEBHOOK_URL="")
def test_no_channel_configured_sends_nothing() -> None:
    assert notify(ALERT) == 0


def test_alertmanager_shape() -> None:
    body = alertmanager_payload(ALERT)
    assert body["version"] == "4"
    assert body["groupKey"] == "anomaly:42"
    assert set(body["alerts"][0]) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
