"""Reading and writing apply records (cluster ConfigMap + local mirror)."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from core.plan import Plan
from core.record import ApplyRecord
from integrations import records
from integrations.kubectl import Kubectl
from tasks.retry import RETRIES, RETRY_DELAYS_S, is_transient


@task(cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S, retry_condition_fn=is_transient)
def load_record(plan: Plan, kubectl: Kubectl) -> tuple[ApplyRecord | None, str]:
    """The cluster's record for this plan (else the local mirror), and where it came from."""
    return records.load(kubectl, plan)


@task(cache_policy=NO_CACHE)
def find_record_for_preview(plan: Plan, kubectl: Kubectl) -> tuple[ApplyRecord | None, str]:
    """A preview must work without cluster access: fall back to the local mirror, and say so."""
    return records.load_for_preview(kubectl, plan)


@task(cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S, retry_condition_fn=is_transient)
def save_record(plan: Plan, kubectl: Kubectl, record: ApplyRecord) -> None:
    records.save(kubectl, plan, record)
