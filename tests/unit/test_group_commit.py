"""GroupCommit: batches form only while a batch runs, answers are per request and released
after the batch function returned (the batch's commit)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from mynakit.services.group_commit import BatchAnswerError, GroupCommit

pytestmark = pytest.mark.unit


class Recorder:
    """A batch function that records its batches; the first batch can be held on a gate."""

    def __init__(self, hold_first: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        if not hold_first:
            self.gate.set()

    def __call__(self, requests: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(requests))
        self.entered.set()
        self.gate.wait(5)
        return [ValueError(f"odd {n}") if n % 2 else n * 10 for n in requests]


def test_a_lone_request_runs_at_once_in_a_batch_of_one() -> None:
    recorder = Recorder()
    committer: GroupCommit[int, int] = GroupCommit(recorder, pipelines=1)
    assert asyncio.run(committer.submit(4)) == 40
    assert recorder.batches == [[4]]
    committer.close()


def test_requests_arriving_while_a_batch_runs_share_the_next_batch() -> None:
    recorder = Recorder(hold_first=True)
    committer: GroupCommit[int, int] = GroupCommit(recorder, pipelines=1, max_batch=3)

    async def scenario() -> list[int | BaseException]:
        first = asyncio.ensure_future(committer.submit(0))
        await asyncio.to_thread(recorder.entered.wait, 5)  # batch [0] is running, held
        rest = [asyncio.ensure_future(committer.submit(n)) for n in (2, 4, 6, 8)]
        await asyncio.sleep(0)
        recorder.gate.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    assert asyncio.run(scenario()) == [0, 20, 40, 60, 80]
    # [0] alone, then the four waiting ones in batches of at most three, in arrival order.
    assert recorder.batches == [[0], [2, 4, 6], [8]]
    assert committer.batch_sizes == [1, 3, 1]
    committer.close()


def test_an_error_answers_its_own_request_only() -> None:
    recorder = Recorder(hold_first=True)
    committer: GroupCommit[int, int] = GroupCommit(recorder, pipelines=1)

    async def scenario() -> list[int | BaseException]:
        first = asyncio.ensure_future(committer.submit(2))
        await asyncio.to_thread(recorder.entered.wait, 5)
        rest = [asyncio.ensure_future(committer.submit(n)) for n in (3, 4)]
        await asyncio.sleep(0)
        recorder.gate.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    first, odd, even = asyncio.run(scenario())
    assert (first, even) == (20, 40)
    assert isinstance(odd, ValueError) and str(odd) == "odd 3"
    assert recorder.batches == [[2], [3, 4]]
    committer.close()


def test_a_failing_batch_fails_every_request_in_it() -> None:
    def broken(requests: Sequence[int]) -> list[int | Exception]:
        raise ConnectionError("database went away")

    committer: GroupCommit[int, int] = GroupCommit(broken)

    async def scenario() -> list[int | BaseException]:
        return await asyncio.gather(
            *(committer.submit(n) for n in range(3)), return_exceptions=True
        )

    assert all(isinstance(answer, ConnectionError) for answer in asyncio.run(scenario()))
    committer.close()


def test_a_batch_answering_the_wrong_number_of_results_fails_the_batch() -> None:
    committer: GroupCommit[int, int] = GroupCommit(lambda requests: [])

    async def scenario() -> list[int | BaseException]:
        return await asyncio.gather(
            *(committer.submit(n) for n in range(3)), return_exceptions=True
        )

    answers = asyncio.run(scenario())
    assert all(isinstance(answer, BatchAnswerError) for answer in answers)
    committer.close()


def test_a_caller_that_went_away_does_not_disturb_the_others() -> None:
    recorder = Recorder(hold_first=True)
    committer: GroupCommit[int, int] = GroupCommit(recorder, pipelines=1)

    async def scenario() -> tuple[int, int]:
        first = asyncio.ensure_future(committer.submit(2))
        await asyncio.to_thread(recorder.entered.wait, 5)
        leaving = asyncio.ensure_future(committer.submit(4))
        staying = asyncio.ensure_future(committer.submit(6))
        await asyncio.sleep(0)
        leaving.cancel()
        recorder.gate.set()
        return await first, await staying

    assert asyncio.run(scenario()) == (20, 60)
    # The cancelled request was already in the waiting batch: it still ran (and committed).
    assert recorder.batches == [[2], [4, 6]]
    committer.close()


@pytest.mark.parametrize(("max_batch", "pipelines"), [(0, 1), (1, 0)])
def test_sizes_below_one_are_refused(max_batch: int, pipelines: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(Recorder(), max_batch=max_batch, pipelines=pipelines)


def test_in_loop_batches_run_on_the_loop_thread_and_gather_what_arrived() -> None:
    threads: list[int] = []
    recorder = Recorder()

    def on_loop(requests: Sequence[int]) -> list[int | Exception]:
        threads.append(threading.get_ident())
        return recorder(requests)

    committer: GroupCommit[int, int] = GroupCommit(on_loop, in_loop=True, max_batch=3)

    async def scenario() -> tuple[list[int | BaseException], int]:
        answers = await asyncio.gather(
            *(committer.submit(n) for n in (2, 3, 4, 6, 8)), return_exceptions=True
        )
        return answers, threading.get_ident()

    answers, loop_thread = asyncio.run(scenario())
    assert answers[0] == 20 and isinstance(answers[1], ValueError) and answers[2:] == [40, 60, 80]
    # Submitted in one go: the first batch takes as many as it may, the rest the next one.
    assert recorder.batches == [[2, 3, 4], [6, 8]]
    assert committer.batch_sizes == [3, 2]
    assert set(threads) == {loop_thread}
    committer.close()


def test_an_in_loop_batch_that_fails_fails_every_request_in_it() -> None:
    def broken(requests: Sequence[int]) -> list[int | Exception]:
        raise ConnectionError("database went away")

    committer: GroupCommit[int, int] = GroupCommit(broken, in_loop=True)

    async def scenario() -> list[int | BaseException]:
        return await asyncio.gather(
            *(committer.submit(n) for n in range(3)), return_exceptions=True
        )

    assert all(isinstance(answer, ConnectionError) for answer in asyncio.run(scenario()))
    committer.close()


def test_a_request_after_close_is_answered_with_an_error_not_left_waiting() -> None:
    committer: GroupCommit[int, int] = GroupCommit(Recorder())
    committer.close()

    async def scenario() -> list[int | BaseException]:
        return await asyncio.gather(*(committer.submit(n) for n in (2, 4)), return_exceptions=True)

    answers = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert all(isinstance(answer, RuntimeError) for answer in answers)
