"""The lifecycle's interfaces without Prefect, for the CLI preview: records through kubectl directly, and a
reporter that only builds the report (the CLI prints it).

kubectl (and `sh`, which imports asyncio) is imported on first use: an apply preview never needs it.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.conventions import Flow
from core.gate import GateRequirement
from core.lifecycle.ports import Loading, Objects, Saving
from core.plan import Plan
from core.record import ApplyRecord, Saved
from core.report import RunReport, StepResult, failure, finished
from core.settings import Settings

if TYPE_CHECKING:
    from integrations.kubectl import Kubectl

PREVIEW_RECORD_TIMEOUT_S = 5.0
"""A preview looks the record up in the cluster but must not hang on one that cannot be reached."""


@dataclass(frozen=True)
class DirectRecords:
    settings: Settings
    timeout_s: float = PREVIEW_RECORD_TIMEOUT_S

    def _kubectl(self, plan: Plan) -> "Kubectl":
        from integrations.kubectl import kubectl_for

        return kubectl_for(self.settings, plan.context, plan.directory, self.timeout_s)

    def load(self, plan: Plan) -> tuple[ApplyRecord | None, str]:
        from integrations import records

        return records.load(self._kubectl(plan), plan)

    def from_file(self, plan: Plan, path: Path) -> ApplyRecord:
        from integrations import records

        return records.read_file(plan, path)

    def start_load(self, plan: Plan) -> Loading:
        loaded = self.load(plan)
        return lambda: loaded

    def load_for_preview(self, plan: Plan) -> tuple[ApplyRecord | None, str]:
        from integrations import records

        return records.load_for_preview(self._kubectl(plan), plan)

    def save(self, plan: Plan, record: ApplyRecord) -> Saved:
        from integrations import records

        return records.save(self._kubectl(plan), plan, record)

    def start_save(self, plan: Plan, record: ApplyRecord) -> Saving:
        saved = self.save(plan, record)
        return lambda: saved

    def run_id(self) -> str:
        return str(uuid.uuid4())


def read_live(settings: Settings, plan: Plan) -> Objects:
    """The apply preview's one batched read of the plan's objects, bounded like the record lookup (no retry: a
    preview that cannot read the cluster says so and shows the planned values)."""
    from integrations.kubectl import kubectl_for
    from integrations.plan_review import read_once

    return read_once(kubectl_for(settings, plan.context, plan.directory, PREVIEW_RECORD_TIMEOUT_S), plan)


@dataclass(frozen=True)
class SummaryReporter:
    def report(self, flow: Flow, plan: Plan, results: Sequence[StepResult], executed: bool, lines: Sequence[str],
               requirement: GateRequirement | None) -> RunReport:
        return finished(results, plan.namespace, executed, lines)

    def fail(self, flow: Flow, plan: Plan, reason: str, lines: Sequence[str],
             requirement: GateRequirement) -> RunReport:
        return failure(reason, lines)
