"""A tiny timer thread: controllers defer "the pod became ready", "the HPA resynced" and "the progress
deadline passed" to it.

Callbacks run under the store lock, one at a time, so they see and write a consistent store. The scheduler's
own lock is never held while a callback runs (listeners schedule work while holding the store lock).

Time is virtual: :meth:`now` is the monotonic clock plus the jumps :meth:`fast_forward` made, so controllers
that compare times (progress deadlines, HPA stabilisation windows) agree with a fast-forwarded scheduler.
Work is either pending (:meth:`settle` waits for it, :meth:`fast_forward` jumps to it) or a *timer*
(``timer=True``: a deadline or a periodic resync that may lie minutes ahead), which only fires when due.
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
        self._heap: list[tuple[float, int, bool, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._offset = 0.0
        self._running = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="sandbox-scheduler", daemon=True)
        self._thread.start()

    def now(self) -> float:
        """Virtual monotonic time in seconds."""
        return time.monotonic() + self._offset

    def schedule(self, delay_s: float, fn: Callable[[], None], timer: bool = False) -> None:
        with self._cond:
            heapq.heappush(self._heap, (self.now() + max(delay_s, 0.0), next(self._seq), timer, fn))
            self._cond.notify_all()

    def _pending_work(self) -> int:
        return sum(1 for entry in self._heap if not entry[2])

    def fast_forward(self) -> int:
        """Jump time ahead to the last queued piece of pending work (timers due by then fire too); returns how
        much pending work was queued."""
        with self._cond:
            due = [at for at, _, timer, _ in self._heap if not timer]
            if due:
                self._offset += max(max(due) - self.now(), 0.0)
            self._cond.notify_all()
            return len(due)

    def pending(self) -> int:
        with self._cond:
            return self._pending_work() + self._running

    def settle(self, timeout_s: float = 5.0) -> bool:
        """Wait until no pending work is queued or running (timers do not count); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pending_work() or self._running:
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
                while not self._stopped and (not self._heap or self._heap[0][0] > self.now()):
                    wait = self._heap[0][0] - self.now() if self._heap else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                _, _, _, fn = heapq.heappop(self._heap)
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
