"""Group commit: requests that arrive while a transaction runs share the next transaction.

A hot service route (a MyKey resolution, an eligibility check) costs the server one database
transaction, and a transaction costs round trips, a commit and, on PostgreSQL, a WAL flush,
whatever the number of rows it writes. Under load many requests wait at the same moment, so
:class:`GroupCommit` hands each batch of waiting requests to one call of a core's batch
function, which runs them in one transaction and answers each request on its own (a result or
the error for that request alone). With no load a request runs at once, alone: batching only
ever groups requests that would otherwise queue.

Every answer is released after its batch function returned, that is after the batch's
transaction committed: a write is acknowledged only once it is committed (docs/services.md §B).
If the batch function raises, every request of the batch gets that exception and nothing of the
batch was committed.

Framework-free (asyncio and a thread pool from the standard library): the HTTP layer submits
from its event loop; the batch function runs in one of ``pipelines`` threads, so the loop keeps
reading and parsing requests while a batch waits on the database. With ``in_loop=True`` the
batch function runs on the event loop itself, one batch at a time, and the loop waits while it
does: no thread hand-offs at all (each database round trip of a worker thread must win the GIL
back from the busy loop, up to the interpreter's switch interval, 5 ms, per round trip), and
the requests that arrive meanwhile wait in the sockets and form the next batch. For a process
whose only hot work is the batch, with several processes per machine (tools/bench/README.md,
bench_mykey.py has the measurements).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

RequestT = TypeVar("RequestT")
ResultT = TypeVar("ResultT")

# Two batches in flight per process: while one waits on its commit the next one's statements
# run. More only adds lock waits on the shared rows (audit chain heads) and GIL hand-offs
# (tools/bench/README.md has the measurements).
DEFAULT_PIPELINES = 2
DEFAULT_MAX_BATCH = 64


class BatchAnswerError(RuntimeError):
    """A batch function answered a different number of results than it got requests."""


class GroupCommit(Generic[RequestT, ResultT]):
    """Submit requests from an event loop; run them in batches of at most ``max_batch``, at
    most ``pipelines`` batches at once, each batch one call of ``run_batch`` in a worker
    thread."""

    def __init__(
        self,
        # One answer per request, in order; an exception answers that request alone.
        run_batch: Callable[[Sequence[RequestT]], Sequence[ResultT | Exception]],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        pipelines: int = DEFAULT_PIPELINES,
        name: str = "group-commit",
        in_loop: bool = False,
    ) -> None:
        if max_batch < 1 or pipelines < 1:
            raise ValueError("max_batch and pipelines must be at least 1")
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._pipelines = 1 if in_loop else pipelines
        self._in_loop = in_loop
        self._waiting: list[tuple[RequestT, asyncio.Future[ResultT]]] = []
        self._running = 0
        self._executor = ThreadPoolExecutor(max_workers=pipelines, thread_name_prefix=name)
        self.batch_sizes: list[int] = []  # every batch's size, for tests and benchmarks

    async def submit(self, request: RequestT) -> ResultT:
        """The request's own result, once the batch that carried it has committed; raises the
        request's own error, or the batch's."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ResultT] = loop.create_future()
        self._waiting.append((request, future))
        self._start_batches(loop)
        return await future

    def close(self) -> None:
        """Wait for the running batches, then stop the threads."""
        self._executor.shutdown(wait=True)

    def _start_batches(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._waiting and self._running < self._pipelines:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            self._running += 1
            self.batch_sizes.append(len(batch))
            requests = [request for request, _ in batch]
            if self._in_loop:
                # Soon, not now: the loop first reads what else arrived, for this batch.
                loop.call_soon(self._run_in_loop, loop, batch)
                continue
            try:
                running = loop.run_in_executor(self._executor, self._run_batch, requests)
            except RuntimeError as error:  # the executor was shut down: answer, do not hang
                refused: asyncio.Future[Sequence[ResultT | Exception]] = loop.create_future()
                refused.set_exception(error)
                self._finished(loop, batch, refused)
                return
            running.add_done_callback(functools.partial(self._finished, loop, batch))

    def _run_in_loop(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[RequestT, asyncio.Future[ResultT]]],
    ) -> None:
        # Requests that arrived since the batch was scheduled join it, up to max_batch.
        room = self._max_batch - len(batch)
        if room > 0 and self._waiting:
            batch = batch + self._waiting[:room]
            del self._waiting[:room]
            self.batch_sizes[-1] = len(batch)
        done: asyncio.Future[Sequence[ResultT | Exception]] = loop.create_future()
        try:
            done.set_result(self._run_batch([request for request, _ in batch]))
        except Exception as error:
            done.set_exception(error)
        self._finished(loop, batch, done)

    def _finished(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[RequestT, asyncio.Future[ResultT]]],
        done: asyncio.Future[Sequence[ResultT | Exception]],
    ) -> None:
        self._running -= 1
        failure = done.exception()
        results: Sequence[ResultT | Exception] = ()
        if failure is None:
            results = done.result()
            if len(results) != len(batch):
                failure = BatchAnswerError(
                    f"a batch of {len(batch)} requests got {len(results)} answers"
                )
        for index, (_, future) in enumerate(batch):
            if future.done():  # the caller went away (cancelled); its work committed anyway
                continue
            answer = failure if failure is not None else results[index]
            if isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)
        self._start_batches(loop)
