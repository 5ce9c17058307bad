"""Rendering a plan: the `plan.yaml` text (seed format, readable) and the `previous-hpa-<name>.yaml` manifests.

Pure: returns file names and texts; writing them (atomically) is the caller's job. What it renders loads with
`core.plan.load_plan` once the files sit side by side, so a generated plan is always a valid plan.

`rollbackHints` mirror what the seed's plans carried, so a plan applied by the old scripts can still be rolled
back: the previous manifest of every HPA the plan changes, `kubectl rollout undo` for workloads whose resources
change, and for scaled workloads an exact `kubectl scale --replicas=<before> --current-replicas=<planned>`
(rollout undo does not restore replicas, kubernetes/kubernetes#25236).
"""

import shlex
from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Any

import yaml

from core.changes import planned_state
from core.conventions import LABELS, PLAN_FILE, Flow
from core.desired import DesiredState
from core.diff import Change, Diff
from core.k8s import Kind
from core.plan import ApplyHpa, Plan, ScaleWorkload, UpdateResources, Workload
from core.report import RunReport, StepResult, markdown, outcome, preview_lines, summary
from core.state import Objects, state_of
from core.steps import apply_steps
from core.vocabulary import Outcome, StepStatus

_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision")


class _Inline(dict[str, Any]):
    """A small mapping written on one line (`requests: {cpu: 250m}`)."""


class _Dumper(yaml.SafeDumper):
    """Block style everywhere (one action or hint per line), except `_Inline` mappings."""

    def represent_inline(self, data: _Inline) -> Any:
        return self.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


_Dumper.add_representer(_Inline, _Dumper.represent_inline)
_Dumper.add_multi_representer(StrEnum, _Dumper.represent_str)  # a vocabulary is written as its plain value


def _dump(document: Any) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120,
                     allow_unicode=False)


def _inline(value: Any) -> Any:
    """`value` with every mapping of scalars made inline."""
    if isinstance(value, Mapping):
        items = {str(k): _inline(v) for k, v in value.items()}
        return _Inline(items) if not any(isinstance(v, Mapping | list) for v in items.values()) else items
    return value


def previous_manifest_name(hpa_name: str) -> str:
    return f"previous-hpa-{hpa_name}.yaml"


def _comment(text: str) -> str:
    return "# " + " ".join(text.split())


def _workload_fields(workload: Workload) -> dict[str, Any]:
    return {"kind": workload.kind} if workload.kind != Kind.DEPLOYMENT else {}


def action_document(change: Change) -> dict[str, Any]:
    """One action as the plan file spells it (seed field names, extensions only where needed)."""
    action = change.action
    doc: dict[str, Any] = {"type": action.type, **_workload_fields(action.workload)}
    if isinstance(action, ScaleWorkload):
        doc.update(name=action.workload.name, replicas=action.replicas)
    elif isinstance(action, UpdateResources):
        doc["name"] = action.workload.name
        if action.container is not None:
            doc["container"] = action.container
        if action.requests:
            doc["requests"] = _Inline(action.requests)
        if action.limits:
            doc["limits"] = _Inline(action.limits)
    else:
        assert isinstance(action, ApplyHpa) and action.bounds is not None
        doc["name"] = action.name
        if action.workload.name != action.name:
            doc["workload"] = action.workload.name
        doc.update(minReplicas=action.bounds.min_replicas, maxReplicas=action.bounds.max_replicas)
        if action.bounds.cpu_utilization is not None:
            doc["targetCPUUtilizationPercentage"] = action.bounds.cpu_utilization
    if change.current is not None:
        doc["current"] = _inline(change.current)
    return doc


def rollback_hints(diff: Diff, namespace: str) -> list[str]:
    """Manifests first (the seed applies them first), then one command per workload, in plan order."""
    hints = [previous_manifest_name(name) for name in diff.previous_hpas]
    undone: set[Workload] = set()
    for change in diff.changes:
        action = change.action
        if isinstance(action, ScaleWorkload) and isinstance(change.current, int):
            hints.append(shlex.join(["kubectl", "scale", action.workload.ref, f"--replicas={change.current}",
                                     f"--current-replicas={action.replicas}", "-n", namespace]))
        elif isinstance(action, UpdateResources) and action.workload not in undone:
            undone.add(action.workload)
            hints.append(shlex.join(["kubectl", "rollout", "undo", action.workload.ref, "-n", namespace]))
    return hints


def clean_manifest(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A live object reduced to what `kubectl apply -f` should restore: no status, uid, versions or fields."""
    metadata = obj.get("metadata") or {}
    kept: dict[str, Any] = {"name": metadata.get("name"), "namespace": metadata.get("namespace")}
    if metadata.get("labels"):
        kept["labels"] = dict(metadata["labels"])
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k not in _DROPPED_ANNOTATIONS}
    if annotations:
        kept["annotations"] = annotations
    return {"apiVersion": obj.get("apiVersion", "autoscaling/v2"), "kind": obj.get("kind"), "metadata": kept,
            "spec": obj.get("spec") or {}}


def render_plan(state: DesiredState, diff: Diff, generated_on: date) -> dict[str, str]:
    """{file name: text}: `plan.yaml` first, then one `previous-hpa-<name>.yaml` per HPA the plan changes.

    The output depends only on its inputs, and the stamp is a day: a rerun the same night (or a retry) renders
    the same bytes, so it commits nothing; a plan generated on another day differs, so infra-apply's record of
    an earlier, identical-looking plan is never mistaken for this one.
    """
    stamp = generated_on.isoformat()
    document: dict[str, Any] = {"namespace": state.namespace, "target": state.target}
    if state.context is not None:
        document["context"] = state.context
    document["generatedAt"] = stamp
    document["actions"] = [action_document(change) for change in diff.changes]
    document["rollbackHints"] = rollback_hints(diff, state.namespace)
    header = [
        _comment(f"infra-scale plan for target {state.target} (namespace {state.namespace}), generated on {stamp} "
                 f"from {state.source}."),
        "# Only what differs from the live cluster; `current` shows what the cluster held when this was written.",
        f"# Apply: label the pull request `{LABELS[Flow.APPLY]}`. Roll back: label it `{LABELS[Flow.ROLLBACK]}`.",
        *(_comment(f"note: {note}") for note in diff.notes),
    ]
    files = {PLAN_FILE: "\n".join(header) + "\n" + _dump(document)}
    for name, hpa in diff.previous_hpas.items():
        files[previous_manifest_name(name)] = (
            _comment(f"hpa/{name} in namespace {state.namespace} before the infra-scale plan of {stamp}: "
                     "what a rollback without records re-applies.") + "\n" + _dump(clean_manifest(hpa)))
    return files


def preview_results(plan: Plan, live: Objects) -> list[StepResult]:
    """The plan's apply steps as previewed results (what `infra-apply` would run), each from the live state the
    plan was written against to the state it would leave."""
    results = []
    for step, action in zip(apply_steps(plan), plan.actions, strict=True):
        before = state_of(action, live)
        results.append(StepResult(step, StepStatus.PREVIEWED, before=before,
                                  after=planned_state(plan, action, before)))
    return results


def pr_body(plan: Plan, live: Objects, plan_path: str, source: str, notes: tuple[str, ...] | list[str] = ()) -> str:
    """The PR description: what the plan does (live → planned per field), where it came from, how to apply it."""
    table = markdown(f"infra-scale: {plan.target or plan.namespace}", preview_results(plan, live), plan.namespace,
                     executed=False, notes=notes)
    lines = [
        f"Generated by the `infra-scale` flow from `{source}`: the plan holds only what differs from the live "
        f"cluster in namespace `{plan.namespace}`.",
        "",
        f"- Plan: `{plan_path}` ({len(plan.actions)} action{'s' if len(plan.actions) != 1 else ''})",
        f"- Apply: add the `{LABELS[Flow.APPLY]}` label (by someone with write access). "
        f"Roll back: add the `{LABELS[Flow.ROLLBACK]}` label.",
        "- A later run for this target updates this pull request instead of opening another.",
        "",
        table,
    ]
    return "\n".join(lines)


def scale_report(state: DesiredState, diff: Diff | None, plan: Plan | None, plan_path: str | None,
                 executed: bool, pull_request: Mapping[str, Any] | None = None,
                 error: str | None = None) -> RunReport:
    """What an infra-scale run prints: the plan's `preview:` lines, `note:` lines, the JSON summary, last word.

    Nothing to do is a success with no results; `error` (live state unreadable, GitHub failing) is a failure; an
    open PR whose plan was applied is left alone (`skipped`).
    """
    results = preview_results(plan, diff.live if diff is not None else ()) if plan is not None else []
    lines = preview_lines([result.step for result in results], state.namespace)
    lines += [f"note: {note}" for note in (diff.notes if diff is not None else ())]
    if diff is not None and diff.empty:
        lines.append(f"note: nothing to do: namespace {state.namespace} already matches {state.source}; "
                     "no plan written, no pull request")
    if plan is not None:
        lines += _written_notes(plan, plan_path, executed, pull_request, error)
    document = summary(results, state.namespace, executed)
    document["target"] = state.target
    document["plan"] = plan_path
    if pull_request is not None:
        document["pullRequest"] = dict(pull_request)
    if error is not None:
        document["ok"] = False
        document["error"] = error
    final = outcome(document)
    if final == Outcome.SUCCEEDED and pull_request is not None and pull_request.get("blocked"):
        final = Outcome.SKIPPED
    return RunReport(tuple(lines), document, final)


def _written_notes(plan: Plan, plan_path: str | None, executed: bool, pull_request: Mapping[str, Any] | None,
                   error: str | None) -> list[str]:
    """The `note:` lines of a written plan: where it is, and what became of its pull request."""
    lines = [f"note: plan written to {plan_path} ({len(plan.actions)} action{'s' if len(plan.actions) != 1 else ''})"]
    if pull_request is not None and pull_request.get("blocked"):
        lines.append(f"note: not updating pull request #{pull_request['number']}: {pull_request['blocked']}")
    elif pull_request is not None:
        verb = "opened" if pull_request.get("created") else "updated"
        lines.append(f"note: {verb} pull request #{pull_request['number']} {pull_request.get('url', '')}".rstrip())
    elif not executed and error is None:
        lines.append("note: dry run: no pull request (--execute opens one, or updates the open one)")
    return lines
