"""The lock of what a run changes: a Prefect global concurrency slot (visible and pausable in the UI) around the
Lease that holds across machines and Prefect servers. Both are keyed by the cluster (the plan's context, or the
kubeconfig's current one) and the namespace: never by `target`, which the plan's author writes."""

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency

from core.conventions import lock_limit_name
from core.lifecycle.ports import Refused
from core.plan import Plan
from integrations.kubeconfig import cluster_of
from integrations.lease import LeaseHandle, LockTimeout, holder_identity, target_lock
from tasks.kube import kubectl_for

PAUSED_POLL_S = 1.0
"""How often a run asks again for a slot the server refused outright (a limit set to 0 answers 422 at once)."""


def lock_limit(plan: Plan) -> str:
    """The Prefect global concurrency limit of the plan's cluster and namespace (deployments/work_pools.py creates
    it with one slot). The Lease is the lock that holds across machines and servers; the limit makes the runs
    visible and pausable in the Prefect UI (set it to 0 and new runs wait, up to the lock timeout). Where it does
    not exist, it is skipped."""
    return lock_limit_name(cluster_of(plan.context), plan.namespace)


@dataclass(frozen=True)
class TaskLock:
    timeout_s: float

    def _occupy(self, stack: ExitStack, slot: str) -> None:
        """Take one slot of `slot` for the stack's lifetime, waiting up to the lock timeout: for a free slot, and
        while the server refuses any (a paused limit); then refuse the run in one line."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                stack.enter_context(concurrency(slot, occupy=1, timeout_seconds=max(remaining, 0.1), strict=False))
                return
            except TimeoutError:
                raise Refused(f"Prefect concurrency limit {slot} had no free slot for {self.timeout_s:g}s") from None
            except ConcurrencySlotAcquisitionError as error:
                if remaining <= PAUSED_POLL_S:
                    answer = str(error).rsplit(": ", 1)[-1].rstrip(".")
                    raise Refused(f"Prefect concurrency limit {slot} admitted no run for {self.timeout_s:g}s "
                                  f"({answer}; a limit of 0 pauses runs)") from None
                time.sleep(PAUSED_POLL_S)

    @contextmanager
    def hold(self, plan: Plan, holder: str) -> Iterator[LeaseHandle]:
        slot = lock_limit(plan)
        held: LeaseHandle | None = None
        finished = False
        try:
            with ExitStack() as stack:
                self._occupy(stack, slot)
                with target_lock(kubectl_for(plan), plan.namespace, holder_identity(holder), self.timeout_s) as held:
                    yield held
                    finished = True
        except LockTimeout as error:
            raise Refused(str(error)) from None
        except httpx.HTTPError as error:  # the slot's release, after the Lease's: the Prefect server went away
            if not finished or held is None:
                raise
            unreleased = (f"the Prefect concurrency slot {slot} could not be released ({error}); it frees itself "
                          "when its slot lease expires")
            held.release_error = "; ".join(filter(None, [held.release_error, unreleased]))
