"""What a record may ask a rollback to do, checked before anything acts on it.

A record is read from a namespace others can write (and from files next to the plan), so it is hostile input even
once its signature verified: each step's action is rebuilt from the record (never paired with the plan by
position) and must name a workload or HPA of the plan's namespace; each prior state may hold only the fields that
action changes, and a prior HPA must be an autoscaling HPA with the action's name and namespace, targeting the
action's workload. Anything else is a corrupt record: `RecordCorrupt`, one line, and nothing runs.
"""

from collections.abc import Mapping
from typing import Any, NoReturn

from core.errors import RecordUnreadable
from core.k8s import MAX_REPLICAS, WORKLOAD_KINDS, Kind, dns_label_problem, parse_quantity, shown
from core.plan import Action, ApplyHpa, HpaBounds, ScaleWorkload, UpdateResources, Workload
from core.record import ApplyRecord, StepRecord
from core.vocabulary import ActionType

HPA_KIND = Kind.HPA.value
HPA_API_GROUP = f"{Kind.HPA.group}/"
_SCALE_FIELDS = {"replicas", "hpa"}
_RESOURCES_FIELDS = {"containers", "indexes", "revision", "template", "missing_container"}
_HPA_FIELDS = {"spec", "manifest", "target_replicas"}
_MANIFEST_FIELDS = {"apiVersion", "kind", "metadata", "spec"}
_METADATA_FIELDS = {"name", "namespace", "labels", "annotations"}
_RESOURCE_PARTS = {"requests", "limits"}
MAX_CONTAINERS = 1000


CORRUPT_NEXT = ("nothing was changed: the record was altered or was not written by infra-orchestrator; roll back "
                "from a copy that verifies (--from-record FILE) or, if none is left, with --seed-fallback")


class RecordCorrupt(RecordUnreadable):
    """A record that is not what apply wrote (its signature does not verify, or its content is not something
    apply could have written): the run fails in one line, exit 1, and nothing runs. An unreadable record of
    which `--seed-fallback` may make no use."""

    def __init__(self, where: str, reason: str, next_step: str = CORRUPT_NEXT) -> None:
        super().__init__(where, reason)
        self.args = (f"{where}: corrupt apply record: {reason}; {next_step}",)


def action_data(action: Action) -> dict[str, Any]:
    """The action in full, as a record stores it: type, kind, name and every field the step applies."""
    if isinstance(action, ScaleWorkload):
        return {"type": action.type, "kind": action.workload.kind, "name": action.workload.name,
                "replicas": action.replicas}
    if isinstance(action, UpdateResources):
        return {"type": action.type, "kind": action.workload.kind, "name": action.workload.name,
                "container": action.container, "requests": dict(action.requests), "limits": dict(action.limits)}
    bounds = action.bounds
    return {"type": action.type, "kind": HPA_KIND, "name": action.name,
            "workload": {"kind": action.workload.kind, "name": action.workload.name}, "manifest": action.manifest,
            "bounds": None if bounds is None else {"minReplicas": bounds.min_replicas,
                                                   "maxReplicas": bounds.max_replicas,
                                                   "cpu": bounds.cpu_utilization}}


def ref_of(action: Action) -> str:
    """The object a step of `action` changes, as kubectl and the record name it (`deployment/web`, `hpa/web`)."""
    return f"hpa/{action.name}" if isinstance(action, ApplyHpa) else action.workload.ref


def _fail(why: str) -> NoReturn:
    raise ValueError(why)


def _name(value: Any, what: str) -> str:
    problem = dns_label_problem(value)
    if problem is not None:
        _fail(f"{what} {shown(value)} {problem}")
    return str(value)


def _replicas(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_REPLICAS:
        _fail(f"{what} {shown(value)} is not a replica count")
    return int(value)


def _workload(kind: Any, name: Any, what: str) -> Workload:
    if kind not in WORKLOAD_KINDS:
        _fail(f"{what} names a {shown(kind)}, not one of {', '.join(WORKLOAD_KINDS)}")
    return Workload(str(kind), _name(name, f"{what} name"))


def _quantities(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict):
        _fail(f"{what} is not a map of quantities")
    for key, quantity in value.items():
        if not isinstance(key, str) or not isinstance(quantity, str) or parse_quantity(quantity) is None:
            _fail(f"{what} holds {shown(key)}: {shown(quantity)}, not a quantity")
    return dict(value)


def _only(state: Mapping[str, Any], allowed: set[str], what: str) -> None:
    extra = sorted(set(state) - allowed)
    if extra:
        _fail(f"{what} holds {shown(extra[0])}, a field the action does not change")


def recorded_action(spec: Mapping[str, Any]) -> Action:
    """The action a record's step stores; ValueError (one line) when it is not one apply could have run."""
    kind = spec.get("type")
    if kind == ActionType.SCALE_WORKLOAD:
        _only(spec, {"type", "kind", "name", "replicas"}, "the action")
        return ScaleWorkload(_workload(spec.get("kind"), spec.get("name"), "the action"),
                             _replicas(spec.get("replicas"), "the action's replicas"))
    if kind == ActionType.UPDATE_RESOURCES:
        _only(spec, {"type", "kind", "name", "container", "requests", "limits"}, "the action")
        container = spec.get("container")
        return UpdateResources(_workload(spec.get("kind"), spec.get("name"), "the action"),
                               None if container is None else _name(container, "the action's container"),
                               _quantities(spec.get("requests"), "the action's requests"),
                               _quantities(spec.get("limits"), "the action's limits"))
    if kind == ActionType.APPLY_HPA:
        _only(spec, {"type", "kind", "name", "workload", "manifest", "bounds"}, "the action")
        if spec.get("kind") != HPA_KIND:
            _fail(f"the action names a {shown(spec.get('kind'))}, not a {HPA_KIND}")
        target = spec.get("workload")
        if not isinstance(target, dict):
            _fail("the action names no workload for its HPA")
        manifest, bounds = spec.get("manifest"), spec.get("bounds")
        if manifest is not None and not isinstance(manifest, str):
            _fail("the action's manifest is not a file name")
        if bounds is not None and not (isinstance(bounds, dict) and set(bounds) == {"minReplicas", "maxReplicas",
                                                                                     "cpu"}):
            _fail("the action's bounds are not minReplicas, maxReplicas and cpu")
        cpu = None if bounds is None else bounds["cpu"]
        if cpu is not None and (not isinstance(cpu, int) or isinstance(cpu, bool)):
            _fail(f"the action's cpu target {shown(cpu)} is not a number")
        return ApplyHpa(_name(spec.get("name"), "the action's name"),
                        _workload(target.get("kind"), target.get("name"), "the HPA's target"), manifest,
                        None if bounds is None else HpaBounds(_replicas(bounds["minReplicas"], "minReplicas"),
                                                              _replicas(bounds["maxReplicas"], "maxReplicas"), cpu))
    _fail(f"the action type {shown(kind)} is not one apply runs")


def _hpa_manifest(manifest: Any, action: ApplyHpa, namespace: str, what: str) -> None:
    if not isinstance(manifest, dict):
        _fail(f"{what} is not an object")
    _only(manifest, _MANIFEST_FIELDS, what)
    api, kind = manifest.get("apiVersion"), manifest.get("kind")
    if kind != HPA_KIND or not isinstance(api, str) or not api.startswith(HPA_API_GROUP):
        _fail(f"{what} is a {shown(api)} {shown(kind)}, not an autoscaling {HPA_KIND}")
    metadata = manifest.get("metadata")
    if not isinstance(metadata, dict):
        _fail(f"{what} has no metadata")
    _only(metadata, _METADATA_FIELDS, f"{what}'s metadata")
    if metadata.get("name") != action.name:
        _fail(f"{what} is hpa/{metadata.get('name')}, not hpa/{action.name}")
    if metadata.get("namespace", namespace) != namespace:
        _fail(f"{what} is in namespace {shown(metadata.get('namespace'))}, not {namespace}")
    spec = manifest.get("spec")
    target = spec.get("scaleTargetRef") if isinstance(spec, dict) else None
    if not isinstance(target, dict) or (target.get("kind"), target.get("name")) != (action.workload.kind,
                                                                                     action.workload.name):
        named = f"{target.get('kind')}/{target.get('name')}" if isinstance(target, dict) else "nothing"
        _fail(f"{what} targets {shown(named)}, not {action.workload.kind}/{action.workload.name}")


def check_state(action: Action, state: Any, namespace: str, what: str) -> None:
    """A recorded before- or after-state holds only what `action` changes, in the shape apply captures it."""
    if state is None:
        return
    if not isinstance(state, dict):
        _fail(f"{what} is not an object")
    if isinstance(action, ScaleWorkload):
        _scale_state(state, what)
    elif isinstance(action, UpdateResources):
        _resources_state(action, state, what)
    else:
        assert isinstance(action, ApplyHpa)
        _hpa_state(action, state, namespace, what)


def _scale_state(state: dict[str, Any], what: str) -> None:
    _only(state, _SCALE_FIELDS, what)
    _replicas(state.get("replicas"), f"{what}'s replicas")
    if state.get("hpa") is not None:
        _name(state["hpa"], f"{what}'s hpa")


def _resources_state(action: UpdateResources, state: dict[str, Any], what: str) -> None:
    _only(state, _RESOURCES_FIELDS, what)
    containers, indexes = state.get("containers", {}), state.get("indexes", {})
    if not isinstance(containers, dict) or not isinstance(indexes, dict) or len(containers) > MAX_CONTAINERS:
        _fail(f"{what} has no containers map")
    if action.container is not None and set(containers) - {action.container}:
        _fail(f"{what} restores container {shown(sorted(set(containers) - {action.container})[0])}, which the "
              f"action does not change")
    for name, resources in containers.items():
        _name(name, f"{what}'s container")
        if not isinstance(resources, dict):
            _fail(f"{what}'s container {name} has no resources map")
        _only(resources, _RESOURCE_PARTS, f"{what}'s container {name}")
        for part, values in resources.items():
            _quantities(values, f"{what}'s {name} {part}")
        index = indexes.get(name)
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < MAX_CONTAINERS:
            _fail(f"{what}'s container {name} has no index")


def _hpa_state(action: ApplyHpa, state: dict[str, Any], namespace: str, what: str) -> None:
    _only(state, _HPA_FIELDS, what)
    if "target_replicas" in state:
        _replicas(state["target_replicas"], f"{what}'s target_replicas")
    spec = state.get("spec", {})
    if not isinstance(spec, dict):
        _fail(f"{what}'s spec is not an object")
    for bound in ("minReplicas", "maxReplicas"):
        if bound in spec:
            _replicas(spec[bound], f"{what}'s {bound}")
    if "manifest" in state:
        _hpa_manifest(state["manifest"], action, namespace, f"{what}'s HPA")


def step_action(step: StepRecord, namespace: str, where: str) -> Action:
    """The action of one recorded step, checked with its states; RecordCorrupt names the step."""
    here = f"{where}, step {step.number}"
    try:
        action = recorded_action(step.spec)
        if step.action != action.type or step.obj != ref_of(action):
            _fail(f"the step changes {shown(step.obj)} by {shown(step.action)}, but its action is {action.type} of "
                  f"{ref_of(action)}")
        check_state(action, step.before, namespace, "the prior state")
        check_state(action, step.after, namespace, "the applied state")
    except ValueError as error:
        raise RecordCorrupt(here, str(error)) from None
    return action


def checked_actions(record: ApplyRecord, namespace: str, where: str) -> list[tuple[tuple[Action, ...], ApplyRecord]]:
    """Every apply of the record's chain, newest first, with its steps' actions, once each is checked. The
    record must be of the plan's namespace (every kubectl call runs with `-n <namespace>`)."""
    checked = []
    for link in record.chain:
        if link.namespace != namespace:
            raise RecordCorrupt(where, f"it is of namespace {shown(link.namespace)}, not the plan's {namespace}")
        checked.append((tuple(step_action(step, namespace, where) for step in link.steps), link))
    return checked
