"""Fixtures for monitoring's tests: host sample rows built like the agent builds them."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from monitoring.models import Host, HostSample
from tests.conftest import free_port


def sample_row(host: Host, ts: datetime, **overrides: Any) -> HostSample:
    values: dict[str, Any] = {
        "cpu_percent": 10.0,
        "cpu_per_core": [10.0, 10.0],
        "load_1": 0.5,
        "load_5": 0.4,
        "load_15": 0.3,
        "memory_total_bytes": 8_000_000_000,
        "memory_used_bytes": 2_000_000_000,
        "memory_available_bytes": 6_000_000_000,
        "memory_percent": 25.0,
        "swap_total_bytes": 0,
        "swap_used_bytes": 0,
        "swap_percent": 0.0,
        "disk_percent": 40.0,
        "disk_read_bytes_per_second": 1000.0,
        "disk_write_bytes_per_second": 2000.0,
        "disks": [],
        "net_sent_bytes_per_second": 300.0,
        "net_recv_bytes_per_second": 400.0,
        "interfaces": {},
    }
    values.update(overrides)
    return HostSample(host=host, ts=ts, **values)


@pytest.fixture
def make_samples() -> Callable[..., list[HostSample]]:
    """Factory: `count` samples of host `name` from `start`, `step` apart; `values(i)` overrides columns."""

    def make(
        name: str,
        start: datetime,
        count: int,
        step: timedelta = timedelta(seconds=5),
        values: Callable[[int], dict[str, Any]] = lambda _: {},
    ) -> list[HostSample]:
        host, _ = Host.objects.get_or_create(name=name, defaults={"interval_seconds": step.total_seconds()})
        rows = [sample_row(host, start + index * step, **values(index)) for index in range(count)]
        return HostSample.objects.bulk_create(rows)

    return make


class TcpProxy:
    """A TCP forwarder in front of a real server; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, []
        for sock in [listener, *sockets]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def db_proxy() -> Iterator[TcpProxy]:
    """A cuttable path to the test PostgreSQL."""
    db = connection.settings_dict
    proxy = TcpProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
    proxy.open()
    yield proxy
    proxy.cut()
