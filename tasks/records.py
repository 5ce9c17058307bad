"""Reading and writing apply records (cluster ConfigMap + local mirror), as Prefect tasks."""

from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE

from core.plan import Plan
from core.record import ApplyRecord
from integrations import records
from tasks.kube import kubectl_for
from tasks.retry import RETRIES, RETRY_DELAYS_S, is_transient


@task(cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S, retry_condition_fn=is_transient)
def load_record(plan: Plan) -> tuple[ApplyRecord | None, str]:
    """The cluster's record for this plan (else the local mirror), and where it came from."""
    return records.load(kubectl_for(plan), plan)


@task(cache_policy=NO_CACHE)
def find_record_for_preview(plan: Plan) -> tuple[ApplyRecord | None, str]:
    """A preview must work without cluster access: fall back to the local mirror, and say so."""
    return records.load_for_preview(kubectl_for(plan), plan)


@task(cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S, retry_condition_fn=is_transient)
def save_record(plan: Plan, record: ApplyRecord) -> None:
    records.save(kubectl_for(plan), plan, record)


@dataclass(frozen=True)
class TaskRecords:
    """The lifecycle's records, each call a Prefect task (reads and writes retried when transient)."""

    def load(self, plan: Plan) -> tuple[ApplyRecord | None, str]:
        return load_record(plan)

    def load_for_preview(self, plan: Plan) -> tuple[ApplyRecord | None, str]:
        return find_record_for_preview(plan)

    def save(self, plan: Plan, record: ApplyRecord) -> None:
        save_record(plan, record)
