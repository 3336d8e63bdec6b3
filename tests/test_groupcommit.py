"""The group-commit combiner: who runs a batch, what each caller gets back."""

from __future__ import annotations

import threading
import time

import pytest

from notifier.groupcommit import Combiner


def test_a_lone_item_runs_at_once_in_the_callers_thread():
    seen = []

    def run(items):
        seen.append((list(items), threading.current_thread()))
        return [item * 2 for item in items]

    combiner = Combiner(run)
    assert combiner.submit(21) == 42
    assert seen == [([21], threading.current_thread())]
    assert combiner.submit(5) == 10  # nothing left running: the next caller runs alone too
    assert combiner.batches == 2


def _blocked(combiner_run, queued: int):
    """A combiner whose first batch blocks until released, and `queued` more callers queued
    behind it; returns (combiner, release, results, threads)."""
    entered, release = threading.Event(), threading.Event()
    batches = []

    def run(items):
        batches.append(list(items))
        if len(batches) == 1:
            entered.set()
            release.wait(5)
        return combiner_run(items)

    combiner = Combiner(run, max_batch=3)
    results: dict[int, object] = {}

    def call(item):
        try:
            results[item] = combiner.submit(item)
        except Exception as exc:  # noqa: BLE001 - checked by the tests
            results[item] = exc

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert entered.wait(5)
    threads = [threading.Thread(target=call, args=(i,)) for i in range(1, queued + 1)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while len(combiner._queue) < queued and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(combiner._queue) == queued
    return combiner, release, results, [first, *threads], batches


def test_callers_arriving_during_a_batch_are_run_together_next_at_most_max_batch():
    combiner, release, results, threads, batches = _blocked(lambda items: [-i for i in items], 5)
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == {i: -i for i in range(6)}  # each caller gets its own item's outcome
    assert batches[0] == [0]
    assert sorted(batches[1]) == batches[1] and len(batches[1]) == 3  # max_batch
    assert sorted(batches[1] + batches[2]) == [1, 2, 3, 4, 5]
    assert combiner.batches == 3 and combiner.items == 6
    assert not combiner._running and not combiner._queue


def test_an_outcome_that_is_an_exception_is_raised_in_its_callers_thread_only():
    def run(items):
        return [ValueError(f"bad {i}") if i % 2 else i for i in items]

    combiner, release, results, threads, _ = _blocked(run, 4)
    release.set()
    for thread in threads:
        thread.join(5)
    for i in range(5):
        if i % 2:
            assert isinstance(results[i], ValueError) and str(results[i]) == f"bad {i}"
        else:
            assert results[i] == i


def test_a_batch_that_raises_fails_each_of_its_callers_and_the_next_batch_still_runs():
    def run(items):
        if 0 in items:
            raise RuntimeError("the batch failed")
        return list(items)

    combiner, release, results, threads, _ = _blocked(run, 2)
    release.set()
    for thread in threads:
        thread.join(5)
    assert isinstance(results[0], RuntimeError)
    assert results[1] == 1 and results[2] == 2
    with pytest.raises(RuntimeError, match="gave 0 outcomes"):
        Combiner(lambda items: []).submit(1)


def test_many_threads_each_get_their_own_result_and_nothing_is_left_behind():
    def run(items):
        time.sleep(0.0005)  # gives the GIL away, as a database round trip does
        return [item + 1 for item in items]

    combiner = Combiner(run, max_batch=4)
    errors = []

    def worker(n):
        for i in range(200):
            item = n * 1000 + i
            if combiner.submit(item) != item + 1:
                errors.append(item)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert combiner.items == 1600
    assert combiner.batches < 1600  # some batches held several items
    assert not combiner._running and not combiner._queue
