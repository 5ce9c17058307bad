"""The rollbacks scheduled at a time-boxed apply's expiry, on the Prefect server: flow runs of the target's
infra-rollback deployment (`infra-rollback/<target>`, as prefect.yaml names it) in a Scheduled state, tagged with
the plan's record name, whose parameters name the record and its digest (flows/rollback.py's scheduled mode).

Only Prefect's public client API: `read_deployment_by_name`, `create_flow_run_from_deployment`, `read_flow_runs`,
`set_flow_run_state`."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL
from prefect.states import Cancelled, Scheduled

from core.conventions import Flow
from core.expiry import ScheduleFailed
from core.plan import Plan
from core.record import record_name

EXPIRY_TAG = "infra-expiry"
"""Every run scheduled at an expiry carries it (and the record's name): the UI filters them."""
WAITING = [StateType.SCHEDULED, StateType.PENDING]
"""A scheduled run not yet started (Prefect's `Late` is a Scheduled state too)."""
_FAILURES = (httpx.HTTPError, PrefectHTTPStatusError, RuntimeError)


def deployment_name(plan: Plan) -> str:
    """`infra-rollback/<target>`: the deployment that rolls the plan's target back."""
    return f"{Flow.ROLLBACK.flow_name}/{plan.target or plan.namespace}"


@dataclass(frozen=True)
class Made:
    run_id: str
    at: datetime


def _deployment(client: SyncPrefectClient, plan: Plan) -> UUID:
    name = deployment_name(plan)
    try:
        return client.read_deployment_by_name(name).id
    except ObjectNotFound:
        where = "" if PREFECT_API_URL.value() else " (PREFECT_API_URL is unset: a temporary server has none)"
        raise ScheduleFailed(f"the Prefect server has no deployment {name}{where}") from None


def problem(plan: Plan) -> str | None:
    """Why the rollback of `plan` could not be scheduled now, or None."""
    try:
        with get_client(sync_client=True) as client:
            _deployment(client, plan)
    except ScheduleFailed as failed:
        return str(failed)
    except _FAILURES as error:
        return f"the Prefect server did not answer ({type(error).__name__}: {error})"
    return None


def schedule(plan: Plan, parameters: dict[str, Any], at: datetime) -> Made:
    """A run of the target's infra-rollback deployment, Scheduled at `at`, with `parameters`."""
    try:
        with get_client(sync_client=True) as client:
            run = client.create_flow_run_from_deployment(
                _deployment(client, plan), parameters=parameters, state=Scheduled(scheduled_time=at),
                tags=[EXPIRY_TAG, record_name(plan)])
    except _FAILURES as error:
        raise ScheduleFailed(f"{type(error).__name__}: {error}") from None
    return Made(str(run.id), at)


def waiting_runs(client: SyncPrefectClient, plan: Plan) -> list[FlowRun]:
    return client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[_deployment(client, plan)])),
        flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[EXPIRY_TAG, record_name(plan)]),
                                      state=FlowRunFilterState(type=FlowRunFilterStateType(any_=WAITING))))


def cancel(plan: Plan, why: str) -> tuple[list[str], str | None]:
    """Cancel (with `why` as the state's message) the runs still waiting at the plan's expiry; returns their
    ids, and why that could not be done, if it could not (no server, no deployment: then nothing waits)."""
    try:
        with get_client(sync_client=True) as client:
            runs = waiting_runs(client, plan)
            for run in runs:
                client.set_flow_run_state(run.id, Cancelled(message=why), force=True)
    except ScheduleFailed:
        return [], None
    except _FAILURES as error:
        return [], f"{type(error).__name__}: {error}"
    return [str(run.id) for run in runs], None
