"""The generators' sender against a real local HTTP server: retries what is transient, never drops silently."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
import requests

from eventlogs.services import sender
from eventlogs.services.sender import DeliveryError, post_batch

RECORDS = [{"id": str(n), "x": "277", "method": "/move"} for n in range(3)]


class Collector(ThreadingHTTPServer):
    """Answers each POST with the next status of `script` (the last one repeats) and keeps what it got."""

    def __init__(self, script: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = script
        self.received: list[tuple[int, dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/v1/events/lol/"


class Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = self.server.script[min(len(self.server.received), len(self.server.script) - 1)]
        self.server.received.append((status, dict(self.headers), body))
        answer = orjson.dumps({"accepted": 3, "failed": 0, "batch": 7} if status == 202 else {"error": "x"})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    monkeypatch.setattr(sender, "BACKOFF_BASE_SECONDS", 0.01)  # the schedule's shape, not its 0.5 s start
    server = Collector(request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("collector", [[503, 429, 500, 202]], indirect=True)
def test_transient_answers_are_retried_until_delivered(collector: Collector) -> None:
    answer = post_batch(requests.Session(), collector.url, "t0ken", RECORDS)
    assert answer == {"accepted": 3, "failed": 0, "batch": 7}
    assert [status for status, _, _ in collector.received] == [503, 429, 500, 202]
    bodies = {body for _, _, body in collector.received}
    assert len(bodies) == 1  # the same batch every time
    _, headers, body = collector.received[-1]
    assert headers["Authorization"] == "Token t0ken"
    assert headers["Content-Encoding"] == "gzip"
    assert [orjson.loads(line) for line in gzip.decompress(body).splitlines()] == RECORDS


@pytest.mark.parametrize("collector", [[400]], indirect=True)
def test_a_permanent_refusal_raises_at_once_naming_the_batch(collector: Collector) -> None:
    with pytest.raises(DeliveryError, match=r"refused a batch of 3 records .*HTTP 400"):
        post_batch(requests.Session(), collector.url, "t0ken", RECORDS)
    assert len(collector.received) == 1


@pytest.mark.parametrize("collector", [[503]], indirect=True)
def test_running_out_of_attempts_raises_instead_of_dropping(collector: Collector) -> None:
    with pytest.raises(DeliveryError, match=r"not delivered after 3 attempts .*HTTP 503"):
        post_batch(requests.Session(), collector.url, "t0ken", RECORDS, attempts=3)
    assert len(collector.received) == 3


def test_an_unreachable_collector_is_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sender, "BACKOFF_BASE_SECONDS", 0.01)
    with pytest.raises(DeliveryError, match=r"after 2 attempts .*ConnectionError"):
        post_batch(requests.Session(), "http://127.0.0.1:9/api/v1/events/lol/", "", RECORDS, attempts=2)
