"""Group commit: requests that arrive while one is being written are written together.

A thread that submits an item when no batch is running runs one itself (alone, so an idle
server adds no wait). Threads that arrive meanwhile queue; when the running batch ends, the
first of them runs everything queued by then as the next batch, and the others wait for it.
One statement and one commit then serve several requests: the API's decisions spent most of
their database time on per-statement work (locks, executor set-up, commit), not on rows.

`run(items)` returns one outcome per item, in order: the item's result, or the exception to
raise in its thread. If `run` itself raises, every item of the batch gets that exception.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


class _Slot:
    __slots__ = ("item", "outcome", "done", "lead")

    def __init__(self, item: Any) -> None:
        self.item = item
        self.outcome: Any = None
        self.done = threading.Event()
        self.lead = False  # woken to run the next batch, not with an outcome


class Combiner:
    def __init__(self, run: Callable[[list], Sequence[Any]], max_batch: int = 32) -> None:
        self._run = run
        self._max = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Slot] = []
        self._running = False
        self.batches = 0  # how many `run` calls, and how many items they took (for tests)
        self.items = 0

    def submit(self, item: Any) -> Any:
        """`item`'s result from a batch; raises the exception its outcome is."""
        slot = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            lead = not self._running
            self._running = True
        if not lead:
            slot.done.wait()
        if lead or slot.lead:
            self._run_next()
        if isinstance(slot.outcome, BaseException):
            raise slot.outcome
        return slot.outcome

    def _run_next(self) -> None:
        with self._lock:
            batch = self._queue[: self._max]
            del self._queue[: self._max]
            self.batches += 1
            self.items += len(batch)
        try:
            outcomes = list(self._run([slot.item for slot in batch]))
            if len(outcomes) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} gave {len(outcomes)} outcomes")
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting thread
            outcomes = [exc] * len(batch)
        finally:
            with self._lock:  # hand the next batch to the first thread that queued for it
                if self._queue:
                    self._queue[0].lead = True
                    self._queue[0].done.set()
                else:
                    self._running = False
        for slot, outcome in zip(batch, outcomes, strict=True):
            slot.outcome = outcome
            slot.done.set()
