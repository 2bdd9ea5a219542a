"""Shared fixtures: real Redis, real PostgreSQL, and real pipewatch processes (workers, beat, servers).

Processes started here run in their own session (process group) and are always stopped at teardown.
They see the test database through DATABASE_URL, so tests that start them use `transactional_db`
(data must be committed for another process to see it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import redis
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

BASE_DIR = Path(__file__).resolve().parent.parent
# Files that start whole systems run first. pytest-xdist (`--dist loadfile --no-loadscope-reorder`, the
# Makefile's) hands out files in collection order; the `make run` test (~4-6 minutes) dealt last made the
# suite's tail while the other workers idled.
FIRST_FILES = ("tests/test_make_run.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order files: FIRST_FILES, then files with a test marked slow, then the rest; within each, files with
    more tests first (xdist's own default order). The sort is stable: tests keep their order in a file."""
    path_of = {id(item): item.nodeid.partition("::")[0] for item in items}
    size: dict[str, int] = {}
    slow: set[str] = set()
    for item in items:
        path = path_of[id(item)]
        size[path] = size.get(path, 0) + 1
        if item.get_closest_marker("slow"):
            slow.add(path)

    def rank(item: pytest.Item) -> tuple[int, int]:
        path = path_of[id(item)]
        group = 0 if path in FIRST_FILES else 1 if path in slow else 2
        return group, -size[path]

    items.sort(key=rank)


@pytest.fixture(autouse=True)
def clean_redis() -> Iterator[redis.Redis]:
    """Each test starts on an empty Redis database (REDIS_URL points at a db reserved for tests)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.close()


def free_port() -> int:
    """A TCP port nothing listens on right now (for servers the tests start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def token_client(db: None) -> APIClient:
    """An API client authenticated with a token of an ordinary (non-staff) user."""
    user = User.objects.create_user("operator", password="not-used-here")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def database_url() -> str:
    """The URL of the database the tests use right now (the test database, once created)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def child_env(transactional_db: None) -> dict[str, str]:
    """Environment for a pipewatch child process: same settings, the test database, unbuffered output."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DJANGO_SETTINGS_MODULE": "core.settings",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass
class ChildProcess:
    """A pipewatch process started by a test; `log` holds everything it printed."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass


CHILD_LOG_TAIL_LINES = 30


@pytest.fixture
def start_process(child_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., ChildProcess]]:
    """Factory: start a command (argv after the Python interpreter) as a child process with its own log."""
    started: list[ChildProcess] = []

    def start(name: str, *argv: str, env: dict[str, str] | None = None) -> ChildProcess:
        log = tmp_path / f"{name}-{len(started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, *argv],
                cwd=BASE_DIR,
                env={**child_env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = ChildProcess(name, proc, log)
        started.append(child)
        return child

    yield start
    for child in reversed(started):
        child.stop()
        # pytest shows a test's captured output only when it fails: then these tails say what each child did
        # (the logs live in a tmp_path that CI does not keep).
        tail = "\n".join(child.output().splitlines()[-CHILD_LOG_TAIL_LINES:])
        sys.stderr.write(f"--- {child.name} (exit {child.proc.returncode}), end of {child.log.name}:\n{tail}\n")


def get_or_none(url: str, timeout: float = 10, **kwargs: object) -> requests.Response | None:
    """The response (any status), or None while nothing listens or it does not answer in time.

    For wait_for conditions on a server that is still starting: a refused connection is "not yet", not an
    error. Compare with `is not None`: a 4xx/5xx Response is falsy.
    """
    try:
        return requests.get(url, timeout=timeout, **kwargs)  # type: ignore[arg-type]
    except requests.RequestException:
        return None


def wait_for(condition: Callable[[], object], timeout: float = 30, interval: float = 0.1, what: str = "") -> object:
    """Poll until `condition()` is truthy; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what or condition}")


@pytest.fixture
def celery_worker(start_process: Callable[..., ChildProcess]) -> Callable[..., ChildProcess]:
    """Factory: a real `celery -A core worker` on the test Redis and database, ready when it answers a ping.

    It also imports tests/celery_tasks.py, the tasks that exist only to test Celery's wiring.
    """
    from core.celery import app

    def start(
        queues: str = "default,detect,ingest,training",
        concurrency: int = 1,
        env: dict[str, str] | None = None,
        extra: tuple[str, ...] = (),
    ) -> ChildProcess:
        hostname = f"test-{uuid.uuid4().hex[:8]}@pytest"
        worker = start_process(
            "worker",
            "-m",
            "celery",
            "-A",
            "core",
            "worker",
            "--queues",
            queues,
            "--concurrency",
            str(concurrency),
            "--hostname",
            hostname,
            "--include",
            "tests.celery_tasks",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            *extra,
            env=env,
        )

        def answers() -> bool:
            if worker.proc.poll() is not None:
                pytest.fail(f"worker exited early:\n{worker.output()}")
            return bool(app.control.ping(destination=[hostname], timeout=0.5))

        wait_for(answers, timeout=60, what=f"worker {hostname} to answer a ping")
        return worker

    return start


class TcpProxy:
    """A TCP proxy the test can cut (every connection dropped, new ones refused) and restore."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone leaves the port listening.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets = []

    def database_url(self) -> str:
        db = connection.settings_dict
        return f"postgres://{db.get('USER') or 'postgres'}@127.0.0.1:{self.port}/{db['NAME']}"


@pytest.fixture
def db_proxy(transactional_db: None) -> Iterator[TcpProxy]:
    """A cuttable path to the test PostgreSQL (point a child process's DATABASE_URL at it)."""
    db = connection.settings_dict
    proxy = TcpProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
    yield proxy
    proxy.cut()
