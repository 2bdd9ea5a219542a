"""Several KIPRIS calls in flight from one worker process, their results handled on the calling thread.

A harvest task runs in one prefork process; at 200 ms a round trip, one request at a time caps a process
at 5/s (issue 16: four workers reached 8/s of the allowed 20/s). The pool's threads only do HTTP (the
client's guard still takes a global token, the budget and the circuit for every call); everything that
touches the database stays on the calling thread, so a page is committed with its checkpoint's advance
on one connection, in order, as before.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import Any


class InFlight:
    """Up to `width` calls at once; `results()` yields (key, result or the exception) as each one ends.

    Each call runs in a copy of the submitter's context, so the harvest log context (org type, IPR mode)
    set around `submit` tags the lines the call logs from its pool thread.
    """

    def __init__(self, width: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=max(1, width), thread_name_prefix="kipris")
        self.pending: dict[Future[Any], Hashable] = {}

    def submit(self, key: Hashable, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        future = self.executor.submit(contextvars.copy_context().run, call, *args, **kwargs)
        self.pending[future] = key

    def results(self) -> Iterator[tuple[Any, Any]]:
        """Finished calls in completion order; calls submitted while iterating are waited for too."""
        while self.pending:
            done, _ = wait(self.pending, return_when=FIRST_COMPLETED)
            for future in done:
                key = self.pending.pop(future)
                error = future.exception()
                yield key, (error if error is not None else future.result())

    def __enter__(self) -> InFlight:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        # On an early exit (a database error, a soft time limit) calls not started are dropped; those in
        # flight end within the client's read timeout.
        self.executor.shutdown(wait=True, cancel_futures=True)
