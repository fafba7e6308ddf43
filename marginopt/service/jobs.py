"""Solves off the event loop, on a bounded thread pool, under a time limit.

Parsing a case, pricing its scenarios and solving are CPU-bound: each request's work
runs on one of ``threads`` worker threads while the event loop keeps answering. The
limit counts from when the request's work is queued:

- still queued at the limit (every thread busy): the job is cancelled before it starts
  and the request gets ``Busy`` (503, retry later);
- running at the limit: the request gets ``SolveTimeout`` (504) at once. Python cannot
  stop a thread, so the abandoned solve runs on to its end and its result is dropped;
  it keeps its thread meanwhile, so at most ``threads`` solves ever run at once,
  abandoned ones included, and new work queues behind them (and meets the first rule).
- more than ``max_pending`` jobs queued or running: refused at once with ``Busy``, so a
  flood of requests cannot hold unbounded memory in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from marginopt.errors import ArgumentError

T = TypeVar("T")


class Busy(Exception):
    """No worker thread came free in time, or the queue is full (answered 503)."""


class SolveTimeout(Exception):
    """The work ran past the time limit (answered 504)."""


class SolveRunner:
    def __init__(self, threads: int, timeout_s: float, max_pending: int) -> None:
        if threads < 1 or timeout_s <= 0 or max_pending < 1:
            raise ArgumentError(f"SolveRunner: expected threads >= 1, timeout_s > 0 and max_pending >= 1, got {threads}, "
                                f"{timeout_s:g} and {max_pending}")
        self.threads = threads
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="marginopt-solve")
        self._pending = 0
        self._count_lock = threading.Lock()
        self._ready_lock = threading.Lock()
        self._guard: contextlib.AbstractContextManager[object] | None = None

    @property
    def pending(self) -> int:
        """Jobs queued or running (abandoned ones included)."""
        return self._pending

    def ready(self) -> None:
        """Warm up once: price the demo, and load (or compile) and run the compiled scenario kernel.

        The kernel is a numba ``parallel=True`` loop. Under the OpenMP or TBB threading layer
        it may be called from several threads at once; numba's fallback layer, ``workqueue``,
        may not (it aborts the process), so under it jobs run one at a time.
        """
        with self._ready_lock:
            if self._guard is not None:
                return
            from marginopt import demo_case_path, load_case, margin
            from marginopt.models import _kernels

            margin(load_case(demo_case_path()))
            # The demo goes through the numpy kernel (it is small), so the compiled one is warmed apart.
            serial = _kernels.warm_up() == "workqueue"
            self._guard = threading.Lock() if serial else contextlib.nullcontext()

    def _job(self, fn: Callable[[], T]) -> T:
        try:
            self.ready()
            assert self._guard is not None
            with self._guard:
                return fn()
        finally:
            with self._count_lock:
                self._pending -= 1

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on a worker thread; its exceptions propagate; ``Busy`` or ``SolveTimeout`` past the limit."""
        with self._count_lock:
            if self._pending >= self.max_pending:
                raise Busy(f"{self._pending} requests are queued or running (limit {self.max_pending}); retry later")
            self._pending += 1
        try:
            future = self._executor.submit(self._job, fn)
        except RuntimeError:  # the executor is shut down (the server is stopping)
            with self._count_lock:
                self._pending -= 1
            raise Busy("the service is shutting down") from None
        waiting = asyncio.wrap_future(future)
        done, _ = await asyncio.wait({waiting}, timeout=self.timeout_s)
        if done:
            return waiting.result()
        if future.cancel():  # never started: it will not run, and gives its place back
            with self._count_lock:
                self._pending -= 1
            raise Busy(f"no solver thread came free within the {self.timeout_s:g} s limit "
                       f"({self.threads} threads, all busy); retry later")
        # Running: it cannot be interrupted (see the module docstring); drop its result when it ends.
        waiting.add_done_callback(_drop_result)
        raise SolveTimeout(f"the solve ran past the {self.timeout_s:g} s time limit and was abandoned; a smaller case "
                           "(fewer scenarios, hedges or venues), or a server started with a longer solve time limit, may help")

    def close(self) -> None:
        """Stop taking work; queued jobs are cancelled, a running one finishes on its own."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _drop_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # mark any exception as retrieved: nobody waits for it any more
