"""The target's lock: a Prefect global concurrency slot (visible and pausable in the UI) around the Lease that
holds across machines and Prefect servers."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from prefect.concurrency.sync import concurrency

from core.lifecycle.ports import Refused
from core.plan import Plan
from integrations.lease import LeaseHandle, LockTimeout, holder_identity, target_lock
from tasks.kube import kubectl_for


def target_slot_name(plan: Plan) -> str:
    """The target's Prefect global concurrency limit (deployments/work_pools.py creates it with one slot).

    The Lease is the lock that holds across machines and servers; the limit makes a target's runs visible and
    pausable in the Prefect UI (set it to 0 and new runs wait). Where it does not exist, it is skipped.
    """
    return f"infra-target-{plan.target or plan.namespace}"


@dataclass(frozen=True)
class TaskLock:
    timeout_s: float

    @contextmanager
    def hold(self, plan: Plan, holder: str) -> Iterator[LeaseHandle]:
        slot = target_slot_name(plan)
        held: LeaseHandle | None = None
        finished = False
        try:
            with concurrency(slot, occupy=1, timeout_seconds=self.timeout_s, strict=False), \
                    target_lock(kubectl_for(plan), plan.namespace, holder_identity(holder), self.timeout_s) as held:
                yield held
                finished = True
        except LockTimeout as error:
            raise Refused(str(error)) from None
        except TimeoutError:
            raise Refused(f"Prefect concurrency limit {slot} had no free slot for {self.timeout_s:g}s") from None
        except httpx.HTTPError as error:  # the slot's release, after the Lease's: the Prefect server went away
            if not finished or held is None:
                raise
            unreleased = (f"the Prefect concurrency slot {slot} could not be released ({error}); it frees itself "
                          "when its slot lease expires")
            held.release_error = "; ".join(filter(None, [held.release_error, unreleased]))
