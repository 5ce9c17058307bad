"""Reading and writing apply records (cluster ConfigMap + local mirror), as Prefect tasks. Not retried by
Prefect: integrations.records retries transient failures itself, for up to RETRY_S."""

import uuid
from dataclasses import dataclass
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from core.lifecycle.ports import Loading, Saving
from core.plan import Plan
from core.record import ApplyRecord, Saved
from integrations import records
from tasks.kube import kubectl_for
from tasks.passing import as_is


@task(cache_policy=NO_CACHE)
def load_record(plan: Plan) -> tuple[ApplyRecord | None, str]:
    """The cluster's record for this plan (else the local mirror), and where it came from."""
    return records.load(kubectl_for(plan), plan)


@task(cache_policy=NO_CACHE)
def find_record_for_preview(plan: Plan) -> tuple[ApplyRecord | None, str]:
    """A preview must work without cluster access: fall back to the local mirror, and say so."""
    return records.load_for_preview(kubectl_for(plan), plan)


@task(cache_policy=NO_CACHE)
def save_record(plan: Plan, record: ApplyRecord) -> Saved:
    """Cluster first (compare-and-swap), then the mirror, both signed; a mirror that cannot be written is a note,
    not a failure."""
    return records.save(kubectl_for(plan), plan, record)


@dataclass
class TaskRecords:
    """The lifecycle's records, each call a Prefect task (reads and writes retried when transient). One per run:
    it keeps the digest of the run's last save, which its report names."""

    last_digest: str | None = None

    def load(self, plan: Plan) -> tuple[ApplyRecord | None, str]:
        return load_record(as_is(plan))

    def from_file(self, plan: Plan, path: Path) -> ApplyRecord:
        return records.read_file(plan, path)

    def start_load(self, plan: Plan) -> Loading:
        return load_record.submit(as_is(plan)).result

    def load_for_preview(self, plan: Plan) -> tuple[ApplyRecord | None, str]:
        return find_record_for_preview(as_is(plan))

    def save(self, plan: Plan, record: ApplyRecord) -> Saved:
        return self._kept(save_record(as_is(plan), as_is(record)))

    def start_save(self, plan: Plan, record: ApplyRecord) -> Saving:
        saving = save_record.submit(as_is(plan), as_is(record))
        return lambda: self._kept(saving.result())

    def _kept(self, saved: Saved) -> Saved:
        self.last_digest = saved.digest or self.last_digest
        return saved

    def run_id(self) -> str:
        from prefect.runtime import flow_run

        return str(flow_run.id or uuid.uuid4())
