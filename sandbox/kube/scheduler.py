"""A tiny timer thread: controllers defer "the pods became ready" and "the HPA resynced" to it.

Callbacks run under the store lock, one at a time, so they see and write a consistent store. The scheduler's
own lock is never held while a callback runs (listeners schedule work while holding the store lock).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, work_lock: threading.RLock) -> None:
        self._work_lock = work_lock
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._running = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="sandbox-scheduler", daemon=True)
        self._thread.start()

    def schedule(self, delay_s: float, fn: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + max(delay_s, 0.0), next(self._seq), fn))
            self._cond.notify_all()

    def fast_forward(self) -> int:
        """Make every queued task due now (time jumps ahead); returns how many were queued."""
        with self._cond:
            self._heap = [(0.0, seq, fn) for _, seq, fn in self._heap]
            heapq.heapify(self._heap)
            self._cond.notify_all()
            return len(self._heap)

    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + self._running

    def settle(self, timeout_s: float = 5.0) -> bool:
        """Wait until no work is queued or running; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._heap or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                _, _, fn = heapq.heappop(self._heap)
                self._running += 1
            try:
                with self._work_lock:
                    fn()
            except Exception:
                log.exception("sandbox controller task failed")
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()
