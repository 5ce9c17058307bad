"""Batches: steps that differ only in the object they change run as one kubectl call.

Starting kubectl costs about 90 ms of CPU here, while the API request it then makes takes 1-3 ms (measured,
bench/README.md), so a plan over 100 workloads spent almost all its time starting kubectl. kubectl takes
several objects in one call and sends the same requests it would send one call per object. With `-o name` it
prints every object it changed, so each step of a batch is confirmed on its own; a step the call did not
confirm runs again alone, with retries and kubectl's own error message.

How the objects are named decides how fast the call is. Named on the command line (`delete hpa a b c`,
`rollout status a b c`), they share one client, whose rate limiter lets 10 requests through and then 5 a
second. Read from `-f -` (`apply`, `replace`, `set resources`, `patch`), each object gets its own client and
nothing waits. So `set resources` and `patch` of named workloads read the names from stdin (objects carrying
only apiVersion, kind and name), and `scale` becomes the equivalent `patch --subresource=scale` of the same
objects: one request each (kubectl's `scale` GETs then PUTs, through one throttled client), with
`--current-replicas` kept as a JSON-patch `test` that the server checks atomically.

Order is kept per group (one workload and its HPA): `waves` puts each group's k-th step in wave k, and a wave
starts after the previous one ended.
"""

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.k8s import Kind
from core.report import StepResult
from core.steps import Step
from core.vocabulary import StepStatus

MAX_BATCH = 250
"""Objects per call at most: bounds the command line, the stdin and how much one slow call holds back; 1,000
objects make `SPREAD_OVER` calls, with no fifth one left to run alone after them."""
SPREAD_OVER = 4
"""Calls a large batch is split into, to run side by side (the flows run 4 kubectl calls at a time,
flows/shared.py): kubectl sends an object's requests one after another, so on a cluster 20 ms away a call over
100 workloads took 4 s; four calls over 25 take 1 s each."""
_MIN_SPLIT = 10
"""A batch this small stays one call: a process start (~90 ms of CPU) costs more than the round trips saved."""

_BY_NAME = {"scale": 2, "set resources": 2, "patch": 1, "delete": 2, "rollout status": 1}
"""Verbs that accept several objects named on the command line, and the requests per object that kubectl's
client-go rate limiter counts (`scale` GETs the object, then writes /scale)."""
_LIMITER_BURST = 10
"""The limiter lets a process make 10 requests at once, then 5 a second (measured: `scale` over 10 objects
took 0.11 s, over 100 took 36 s), so a call naming objects stays within the burst."""
_NAMED_ON_STDIN = frozenset({"set resources", "patch", "scale", "delete"})
"""Verbs whose batches name their objects on stdin instead (`scale` as `patch --subresource=scale`; `delete`
with `--wait=false`, since its wait watches through one shared client: an HPA has no finalizer to wait for)."""
_WORKLOAD_API = {kind.resource: (kind.api_version, kind.value) for kind in Kind}
_SCALE = re.compile(r"^--replicas=(\d+)$")
_CURRENT = re.compile(r"^--current-replicas=(\d+)$")
_BY_STDIN = (("apply", "-f", "-"), ("replace", "-f", "-"))
"""Verbs whose objects come on stdin, one JSON object per line. kubectl makes a client per object there, so the
limiter never waits (measured: 100 HPAs applied in 0.4 s)."""
_ROLLED_OUT = re.compile(r'^\S+ "([^"]+)" successfully rolled out$')


@dataclass(frozen=True)
class Batch:
    """Steps run by one kubectl call: `args` and `stdin` carry every step's object."""

    steps: tuple[Step, ...]
    args: tuple[str, ...]
    stdin: str | None = None

    @property
    def title(self) -> str:
        """The Prefect task-run name of a shared call (a step alone runs as `execute_step`, under its own)."""
        return f"{len(self.steps)} steps: {' '.join(self.steps[0].args[:2])}"

    def confirmed(self, stdout: str) -> list[Step]:
        """The steps kubectl reported as done: `-o name` lines (`kind.group/name`) or rollout status lines."""
        names = set()
        for line in stdout.splitlines():
            rolled_out = _ROLLED_OUT.match(line.strip())
            names.add(rolled_out.group(1) if rolled_out else line.strip().rsplit("/", 1)[-1])
        return [step for step in self.steps if object_name(step) in names]

    def tried(self, left: Sequence[Step], stderr: str) -> set[int]:
        """Numbers of the steps in `left` (not confirmed by a call that failed) whose request the call made and
        saw fail: the first one (kubectl stops at, or at least reports, the first failure) and any its errors
        name (`deployments.apps "web" not found`)."""
        named = {step.number for step in left if f'"{object_name(step)}"' in stderr}
        return named | {left[0].number} if left and stderr.strip() else named


@dataclass(frozen=True)
class BatchRun:
    """What one shared kubectl call did: the steps it confirmed, and its error for the others."""

    batch: Batch
    done: tuple[Step, ...]
    duration_s: float
    error: str | None = None
    stderr: str = ""

    def results(self) -> list[StepResult]:
        size = len(self.batch.steps)
        return [StepResult(step, StepStatus.SUCCEEDED, attempts=1, duration_s=self.duration_s, batch=size)
                for step in self.done]

    @property
    def left(self) -> list[Step]:
        done = {step.number for step in self.done}
        return [step for step in self.batch.steps if step.number not in done]


def object_name(step: Step) -> str:
    return (step.obj or "").rsplit("/", 1)[-1]


def _name_position(step: Step) -> int | None:
    """Where the step's object stands in its arguments (`deployment/web`, or `web` after `hpa`), if batchable."""
    if step.stdin is not None or step.obj is None or _verb(step) is None:
        return None
    kind, _, name = step.obj.rpartition("/")
    for index, arg in enumerate(step.args):
        if arg == step.obj or (arg == name and index > 0 and step.args[index - 1] == kind):
            return index
    return None


def _verb(step: Step) -> str | None:
    return next((verb for verb in (" ".join(step.args[:2]), step.args[0]) if verb in _BY_NAME), None)


def _capacity(step: Step, max_batch: int) -> int:
    verb = _verb(step)
    if verb is None or step.stdin is not None or _stdin_form(step) is not None:
        return max_batch
    return min(max_batch, _LIMITER_BURST // _BY_NAME[verb])


def _stdin_form(step: Step) -> tuple[str, ...] | None:
    """The arguments of a batch of steps like `step` that reads its objects from `-f -`, or None when the
    objects stay named on the command line."""
    position = _name_position(step)
    verb = _verb(step)
    kind = (step.obj or "").partition("/")[0]
    if position is None or verb not in _NAMED_ON_STDIN or kind not in _WORKLOAD_API:
        return None
    options = step.args[position + 1:]
    if verb == "delete":
        named_hpa = step.args[:position] == ("delete", "hpa") and kind == "hpa"
        return ("delete", "-f", "-", *options, "--wait=false", "-o", "name") if named_hpa else None
    if step.args[position] != step.obj or kind == "hpa":
        return None
    if verb != "scale":
        return (*step.args[:position], "-f", "-", *options, "-o", "name")
    replicas = [int(match.group(1)) for option in options if (match := _SCALE.match(option))]
    current = [int(match.group(1)) for option in options if (match := _CURRENT.match(option))]
    if len(replicas) != 1 or len(current) + len(replicas) != len(options):
        return None
    operations = [{"op": "test", "path": "/spec/replicas", "value": value} for value in current]
    operations.append({"op": "replace", "path": "/spec/replicas", "value": replicas[0]})
    return ("patch", "-f", "-", "--subresource=scale", "--type=json",
            f"-p={json.dumps(operations, separators=(',', ':'))}", "-o", "name")


def identity(ref: str) -> str:
    """A JSON line naming a workload or HPA (`deployment/web`) for `-f -`: enough for kubectl to find the live
    object."""
    kind, _, name = ref.partition("/")
    api_version, kind_name = _WORKLOAD_API[kind]
    return json.dumps({"apiVersion": api_version, "kind": kind_name, "metadata": {"name": name}})


def stdin_chunks(refs: Sequence[str]) -> list[str]:
    """`refs` as the `-f -` inputs of calls that run side by side: one call up to `_MIN_SPLIT` objects, else
    spread over `SPREAD_OVER` calls of at most `MAX_BATCH` (as step batches are)."""
    size = min(MAX_BATCH, max(_MIN_SPLIT, -(-len(refs) // SPREAD_OVER)))
    return ["".join(identity(ref) + "\n" for ref in refs[start:start + size]) for start in range(0, len(refs), size)]




def _key(step: Step) -> tuple[object, ...] | None:
    """Steps with equal keys can share a call; None when the step must run alone."""
    if step.stdin is not None:
        one_json_object = step.stdin.startswith("{") and "\n" not in step.stdin.strip()
        return ("stdin", step.args) if step.args in _BY_STDIN and one_json_object and step.obj else None
    position = _name_position(step)
    if position is None:
        return None
    return ("args", position, step.args[:position], step.args[position + 1:])


def _batched(steps: list[Step]) -> Batch:
    first = steps[0]
    if len(steps) == 1:
        return Batch((first,), first.args, first.stdin)
    if first.stdin is not None:
        return Batch(tuple(steps), (*first.args, "-o", "name"), "\n".join(step.stdin or "" for step in steps) + "\n")
    on_stdin = _stdin_form(first)
    if on_stdin is not None:
        return Batch(tuple(steps), on_stdin, "\n".join(identity(step.obj or "") for step in steps) + "\n")
    position = _name_position(first)
    assert position is not None
    names = tuple(step.args[position] for step in steps)
    output = () if first.args[:2] == ("rollout", "status") else ("-o", "name")
    return Batch(tuple(steps), (*first.args[:position], *names, *first.args[position + 1:], *output))


def batches(steps: Sequence[Step], max_batch: int = MAX_BATCH) -> list[Batch]:
    """Steps grouped into calls, in order of first appearance; each object at most once per call (kubectl's
    output names objects, not steps). A group larger than `_MIN_SPLIT` is spread over `SPREAD_OVER` calls."""
    sharing: dict[tuple[object, ...], int] = {}
    for step in steps:
        if (key := _key(step)) is not None:
            sharing[key] = sharing.get(key, 0) + 1
    open_batches: dict[tuple[object, ...], tuple[list[Step], set[str]]] = {}
    ordered: list[list[Step]] = []
    for step in steps:
        key = _key(step)
        current = open_batches.get(key) if key is not None else None
        spread = max(_MIN_SPLIT, -(-sharing.get(key, 1) // SPREAD_OVER)) if key is not None else 1
        name = object_name(step)
        if current is None or len(current[0]) >= min(_capacity(step, max_batch), spread) or name in current[1]:
            current = ([], set())
            ordered.append(current[0])
            if key is not None:
                open_batches[key] = current
        current[0].append(step)
        current[1].add(name)
    return [_batched(group) for group in ordered]


def waves(steps: Sequence[Step], group_of: Callable[[Step], str]) -> list[list[Step]]:
    """Wave k holds the k-th step of every group, so a group's steps run in order, one wave after another."""
    depth: dict[str, int] = {}
    result: list[list[Step]] = []
    for step in steps:
        group = group_of(step)
        index = depth.get(group, 0)
        depth[group] = index + 1
        if index == len(result):
            result.append([])
        result[index].append(step)
    return result
