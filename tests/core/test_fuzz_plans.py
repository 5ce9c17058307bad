"""Fuzz: seeded, generated hostile plans, manifests, hints and flags through the CLI, preview mode.

Every case is either accepted with the preview it should have (each action's kubectl line, computed here
independently of core.steps) or refused with exit 2, one stderr line naming the file, no traceback; and kubectl
(a recording wrapper) is never called, except for the record lookup a rollback preview makes (`get`, read-only).
Most cases call `cli.main.run` in-process; a slice runs the real `infra-apply`/`infra-rollback` entry points.
Every case says in advance which of the two outcomes it must have.
"""

import io
import json
import os
import random
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cli.main import run
from core.lifecycle.common import PREVIEW_GATE_NOTE

SEED = 20261201
GENERATED = 240
SUBPROCESS_SLICE = 6
WRITE_VERBS = {"scale", "set", "apply", "patch", "delete", "create", "replace", "rollout", "annotate", "label", "edit"}


@dataclass(frozen=True)
class Raw:
    """A plain YAML scalar written exactly as given (`1:30`, `017`, a 5,000-digit number)."""

    text: str


@dataclass
class Case:
    name: str
    plan: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)
    """Other files next to the plan (manifests), as text."""
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    refused: bool = True
    expected: list[str] = field(default_factory=list)
    """For an accepted apply: the preview and note lines, in order."""
    expected_rollback: list[str] = field(default_factory=list)
    """For an accepted rollback (no record, no hints): the seed's preview lines, undo per workload then delete hpa."""


# ------------------------------------------------------------------------------------------ YAML text
def scalar(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # a double-quoted YAML scalar, escapes and all


def to_yaml(value: Any, indent: str = "") -> str:
    """Block-style YAML, so that plain scalars like `1:30` are read as the YAML 1.1 resolver reads them."""
    if isinstance(value, dict) and value:
        lines = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{indent}{scalar(key)}:\n{to_yaml(item, indent + '  ')}")
            else:
                lines.append(f"{indent}{scalar(key)}: {to_yaml(item)}")
        return "\n".join(lines)
    if isinstance(value, list) and value:
        lines = []
        for item in value:
            text = to_yaml(item, indent + "  ")
            lines.append(f"{indent}- {text.lstrip()}" if isinstance(item, dict) and item else f"{indent}- {text}")
        return "\n".join(lines)
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return scalar(value)


# ------------------------------------------------------------------------------------------ the attacks
FULLWIDTH_3, ARABIC_3 = "\uff13", "\u0663"  # digits to str.isdigit and int(), not to Kubernetes
BAD_NAMES = ["web\n", "Web", "-web", "web-", "a" * 64, "../../etc", "**web**", "[web](http://evil.example)",
             "web;id", "$(id)", "wéb", "web ", "", "web\u2028", "web\x00", Raw("1:30"), Raw("true"), 5]
BAD_TARGETS = [*BAD_NAMES, "prod/../../etc", "# Approved", "prod\nnamespace: kube-system"]
BAD_INTEGERS = [Raw("1:30"), Raw("017"), Raw("0x1F"), Raw("0o17"), Raw("1_000"), Raw("9" * 5000), Raw(FULLWIDTH_3),
                FULLWIDTH_3, Raw(ARABIC_3), -1, 10_001, 2**31, 2**63, Raw("true"), Raw("1.5"), Raw(".inf"), Raw("1e3"),
                "5", Raw("+3")]
BAD_QUANTITIES = ["250m\n", Raw("1e999999999"), "1e999999999", "9" * 5000, Raw("9" * 5000), "1.5.5", "-1", "1Gb",
                  Raw(".nan"), Raw(".inf"), "1e100", "1e99", "0.0000000001", "1Mi ", "", "\uff11", Raw("1:30"), True,
                  "99999999999999999999E"]
BAD_RESOURCES = ["cpu\n", "CPU", "gpu!", "vendor.com/", "/gpu", "a" * 254, "cpu memory"]
BAD_CONTEXTS = ["-prod", "a b", "prod\n", "", "--kubeconfig=/tmp/x", Raw("true"), "ctx\u2028"]
UNICODE_REPLICAS_HINT = f"kubectl scale deployment/web --replicas={FULLWIDTH_3}"
HUGE_REPLICAS_HINT = "kubectl scale deployment/web --replicas=" + "9" * 5000
BAD_HINTS = ["../../etc/passwd", "/etc/passwd", UNICODE_REPLICAS_HINT, HUGE_REPLICAS_HINT,
             f"kubectl scale deployment/web --replicas={ARABIC_3}",
             f"kubectl rollout undo deployment/web --to-revision={FULLWIDTH_3}", "kubectl delete ns prod",
             "kubectl exec web -- sh", "kubectl apply -f /etc/passwd", "kubectl scale deployment/web\n --replicas=1",
             "kubectl scale deployment/Web --replicas=1", "kubectl scale deployment/web --replicas=-1",
             "kubectl rollout undo deployment/web -n kube-system", "kubectl apply -f ../x.yaml"]
BAD_PR = [FULLWIDTH_3, ARABIC_3, "9" * 5000, "0", "-1", "1e3", " 7", "7\n", "+7", "0x7", "2147483648"]


def hpa(name: str = "web", target: str = "web", kind: str = "Deployment", api: str = "autoscaling/v2",
        **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
                            "maxReplicas": 4, **spec}
    return {"apiVersion": api, "kind": "HorizontalPodAutoscaler", "metadata": {"name": name}, "spec": body}


SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: stolen}\nstringData: {token: x}\n"
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: evil}\n"
CRB = ("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: own}\n"
       "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n"
       "subjects: [{kind: User, name: mallory}]\n")
BAD_MANIFESTS: list[str] = [
    "",
    "# only a comment\n",
    SECRET,
    NAMESPACE,
    CRB,
    NAMESPACE + "---\n" + SECRET,
    to_yaml(hpa()) + "\n---\n" + SECRET,
    SECRET + "---\n" + to_yaml(hpa()),
    "apiVersion: v1\nkind: List\nitems:\n- " + to_yaml(hpa(), "  ").lstrip() + "\n",
    to_yaml(hpa(target="api")),
    to_yaml(hpa(kind="StatefulSet")),
    to_yaml(hpa(kind="DaemonSet")),
    to_yaml({**hpa(), "metadata": {"name": "web", "namespace": "kube-system"}}),
    to_yaml({**hpa(), "metadata": {"name": "web\n"}}),
    to_yaml(hpa(minReplicas=5)),
    to_yaml(hpa(maxReplicas=Raw("1:30"))),
    to_yaml(hpa(maxReplicas=Raw("9" * 5000))),
    to_yaml(hpa(minReplicas=0)),
    to_yaml(hpa(api="autoscaling/v2beta1")),
    to_yaml(hpa(api="autoscaling/v1", targetCPUUtilizationPercentage=FULLWIDTH_3)),
    to_yaml(hpa(api="autoscaling/v1", metrics=[])),
    to_yaml({**hpa(), "status": {"currentReplicas": 1}}),
    to_yaml({**hpa(), "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4}}),
    to_yaml({**hpa(), "spec": {"scaleTargetRef": {"apiVersion": "extensions/v1beta1", "kind": "Deployment",
                                                  "name": "web"}, "maxReplicas": 4}}),
    to_yaml([hpa()]),
    "just text\n",
    "kind: HorizontalPodAutoscaler\n",
]


# ------------------------------------------------------------------------------------------ the generator
class Generator:
    """Seeded: the same cases on every run, in every CI."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def pick(self, options: list[Any]) -> Any:
        return self.random.choice(options)

    def name(self) -> str:
        stem = self.pick(["web", "api", "db", "worker", "a", "x1", "cache-2", "z" * 63])
        return str(stem)

    def quantity(self) -> Any:
        return self.pick(["250m", "1", 2, "0.5", "512Mi", "1Gi", "100M", "1e3", "1.5", "0", ".5", "999999999999"])

    def valid(self) -> Case:
        """A plan that must be accepted, with the preview it must show."""
        namespace = self.pick(["ns", "assistant", "prod-1", "n" * 63])
        plan: dict[str, Any] = {"namespace": namespace, "target": self.pick(["prod", "staging", "t1"]), "actions": []}
        files: dict[str, str] = {}
        expected: list[str] = []
        undone: dict[str, None] = {}  # ordered sets: the seed's rollback keeps first appearances
        deleted: dict[str, None] = {}
        for _ in range(self.random.randint(1, 4)):
            kind = self.pick(["Deployment", "StatefulSet"])
            name = self.name()
            ref = f"{kind.lower()}/{name}"
            action: dict[str, Any] = {"name": name, **({"kind": kind} if kind != "Deployment" else {})}
            variant = self.pick(["scale", "resources", "hpa", "manifest"])
            if variant == "scale":
                replicas = self.pick([0, 1, 3, 10_000])
                action.update(type="scale_workload", replicas=replicas)
                expected.append(f"preview: kubectl -n {namespace} scale {ref} --replicas={replicas}")
                undone[ref] = None
            elif variant == "resources":
                requests = {"cpu": self.quantity()}
                action.update(type="update_resources", requests=requests, container=self.name())
                flag = ",".join(f"{key}={value}" for key, value in requests.items())
                expected.append(f"preview: kubectl -n {namespace} set resources {ref} -c={action['container']} "
                                f"--requests={flag}")
                undone[ref] = None
            elif variant == "hpa":
                low, high = sorted([self.random.randint(1, 10_000), self.random.randint(1, 10_000)])
                action.update(type="apply_hpa", minReplicas=low, maxReplicas=high)
                expected += [f"preview: kubectl -n {namespace} apply -f -",
                             f"note: hpa/{name} for {ref}: min {low}, max {high}"]
                deleted[name] = None
            else:
                path = f"hpa-{len(files)}.yaml"
                api = self.pick(["autoscaling/v2", "autoscaling/v1"])
                manifest = hpa(name, name, kind, api, minReplicas=1)
                if self.random.random() < 0.5:
                    manifest["metadata"]["namespace"] = namespace
                files[path] = to_yaml(manifest) + "\n"
                action.update(type="apply_hpa", manifest=path)
                expected.append(f"preview: kubectl -n {namespace} apply -f {path}")
                deleted[name] = None
            plan["actions"].append(action)
        rollback = [f"preview: kubectl -n {namespace} rollout undo {ref}" for ref in undone]
        rollback += [f"preview: kubectl -n {namespace} delete hpa {name}" for name in deleted]
        return Case("valid", plan, files, refused=False, expected=expected, expected_rollback=rollback)

    def base(self) -> Case:
        """A small valid plan to break: web (scaled, resized, given an HPA from a manifest) and a hint."""
        plan = {
            "namespace": "ns", "target": "prod",
            "actions": [
                {"type": "scale_workload", "name": "web", "replicas": 3},
                {"type": "update_resources", "name": "web", "container": "app",
                 "requests": {"cpu": "250m"}, "limits": {"cpu": "1"}},
                {"type": "apply_hpa", "name": "web", "manifest": "hpa.yaml"},
            ],
            "rollbackHints": ["previous-hpa.yaml", "kubectl rollout undo deployment/web -n ns"],
        }
        text = to_yaml(hpa()) + "\n"
        return Case("base", plan, {"hpa.yaml": text, "previous-hpa.yaml": text})

    def hostile(self) -> Case:
        case = self.base()
        actions = case.plan["actions"]
        slot = self.pick(["namespace", "target", "name", "container", "workload", "replicas", "hpa-bound",
                          "quantity", "resource", "context", "hint", "manifest", "hint-file", "pr", "prnum"])
        if slot in ("namespace", "target", "context"):
            case.plan[slot] = self.pick({"namespace": BAD_NAMES, "target": BAD_TARGETS, "context": BAD_CONTEXTS}[slot])
        elif slot in ("name", "container", "workload"):
            index = {"name": self.random.randint(0, 2), "container": 1, "workload": 2}[slot]
            actions[index][slot] = self.pick(BAD_NAMES)
        elif slot == "replicas":
            actions[0]["replicas"] = self.pick(BAD_INTEGERS)
        elif slot == "hpa-bound":
            actions[2] = {"type": "apply_hpa", "name": "web", "minReplicas": 1, "maxReplicas": 4}
            actions[2][self.pick(["minReplicas", "maxReplicas", "targetCPUUtilizationPercentage"])] = (
                self.pick([*BAD_INTEGERS, 0]))
        elif slot == "quantity":
            actions[1][self.pick(["requests", "limits"])] = {"cpu": self.pick(BAD_QUANTITIES)}
        elif slot == "resource":
            actions[1]["requests"] = {self.pick(BAD_RESOURCES): "1"}
        elif slot == "hint":
            case.plan["rollbackHints"] = [self.pick(BAD_HINTS)]
        elif slot in ("manifest", "hint-file"):
            case.files["hpa.yaml" if slot == "manifest" else "previous-hpa.yaml"] = self.pick(BAD_MANIFESTS)
        else:
            bad = self.pick(BAD_PR)
            if slot == "pr":
                case.args = (f"--pr={bad}", self.pick(["--execute", "--dry-run"]))
            else:
                case.args = ("--execute",)
                case.env = {"PRNUM": bad}
        case.name = slot
        return case

    def cases(self, count: int) -> list[Case]:
        return [self.valid() if index % 4 == 0 else self.hostile() for index in range(count)]


def named_attacks() -> Iterator[Case]:
    """The attacks the issue names, each at least once, whatever the generator picks."""

    def base() -> Case:
        case = Generator(0).base()
        case.name = "named attack"
        return case

    for value in ["web\n", "../../etc", "**web**"]:
        for slot in ("namespace", "target"):
            case = base()
            case.plan[slot] = value
            yield case
    for slot, value in [("name", "web\n"), ("container", "app\n")]:
        case = base()
        case.plan["actions"][1][slot] = value
        yield case
    quantity: object
    for quantity in ["250m\n", Raw("1e999999999"), "9" * 5000]:
        case = base()
        case.plan["actions"][1]["requests"] = {"cpu": quantity}
        yield case
    for replicas in [Raw("1:30"), Raw(FULLWIDTH_3), Raw("9" * 5000)]:
        case = base()
        case.plan["actions"][0]["replicas"] = replicas
        yield case
    for text in [BAD_MANIFESTS[8], NAMESPACE + "---\n" + SECRET, CRB, to_yaml(hpa()) + "\n---\n" + SECRET,
                 to_yaml(hpa(target="api"))]:
        for file in ("hpa.yaml", "previous-hpa.yaml"):
            case = base()
            case.files[file] = text
            yield case
    for hint in [UNICODE_REPLICAS_HINT, HUGE_REPLICAS_HINT]:
        case = base()
        case.plan["rollbackHints"] = [hint]
        yield case
    for pr in [FULLWIDTH_3, ARABIC_3, "9" * 5000]:
        case = base()
        case.args = (f"--pr={pr}", "--execute")
        yield case
        case = base()
        case.args, case.env = ("--execute",), {"PRNUM": pr}
        yield case


ALL_CASES = [*named_attacks(), *Generator(SEED).cases(GENERATED)]


# ------------------------------------------------------------------------------------------ running them
@pytest.fixture
def recorder(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "kubectl-calls.log"
    wrapper = tmp_path / "kubectl-recorder"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return wrapper, log


def write_case(case: Case, directory: Path) -> Path:
    directory.mkdir(parents=True)
    for name, text in case.files.items():
        (directory / name).write_text(text)
    plan = directory / "plan.yaml"
    plan.write_text(to_yaml(case.plan) + "\n")
    return plan


def check(case: Case, flow: str, plan: Path, code: int, out: str, err: str, calls: list[str]) -> str | None:
    """What is wrong with one run, or None."""
    if "Traceback" in out + err:
        return "traceback"
    if case.refused:
        lines = err.splitlines()
        if code != 2 or len(lines) != 1 or not lines[0].startswith("error: ") or out:
            return f"not refused cleanly: exit {code}, stderr {err!r}, stdout {out[:200]!r}"
        source = "arguments" if case.args or case.env else str(plan)
        if not lines[0].startswith(f"error: {source}"):
            return f"the error does not name {source}: {lines[0]!r}"
        return f"kubectl was called: {calls}" if calls else None
    if code != 0 or err or out.splitlines()[-1:] != ["succeeded"]:
        return f"not accepted: exit {code}, stderr {err!r}"
    shown = [line for line in out.splitlines() if line.startswith(("preview: ", "note: "))]
    if flow == "apply":
        if shown != [*case.expected, f"note: {PREVIEW_GATE_NOTE}"]:
            return f"preview {shown} is not {case.expected} and the preview's gate note"
        writes = [call for call in calls if " get " not in f" {call} "]
        return f"the preview called kubectl for more than its one read of live values: {writes}" if writes else None
    previews = [line for line in shown if line.startswith("preview: ")]
    if previews != case.expected_rollback:
        return f"rollback preview {previews} is not {case.expected_rollback}"
    writes = [call for call in calls if "get" not in call.split() or WRITE_VERBS.intersection(call.split())]
    return f"a rollback preview called kubectl to change something: {writes}" if writes else None


def in_process(case: Case, flow: str, plan: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with monkeypatch.context() as patch:
        patch.delenv("PRNUM", raising=False)
        for key, value in case.env.items():
            patch.setenv(key, value)
        code = run(flow, [f"--plan={plan}", *case.args], out, err)
    return code, out.getvalue(), err.getvalue()


def test_the_generated_set_is_large_and_mixed() -> None:
    assert len(ALL_CASES) >= 200
    assert sum(not case.refused for case in ALL_CASES) >= 40
    assert {case.name for case in ALL_CASES} >= {"namespace", "target", "name", "container", "workload", "replicas",
                                                  "hpa-bound", "quantity", "resource", "context", "hint", "manifest",
                                                  "hint-file", "pr", "prnum", "valid"}


def test_every_case_is_accepted_with_its_preview_or_refused_cleanly(
    tmp_path: Path, recorder: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrapper, log = recorder
    monkeypatch.setenv("KUBECTL", str(wrapper))
    failures = []
    for index, case in enumerate(ALL_CASES):
        plan = write_case(case, tmp_path / f"case-{index}")
        for flow in ("apply", "rollback"):
            log.unlink(missing_ok=True)
            try:
                code, out, err = in_process(case, flow, plan, monkeypatch)
            except Exception as error:  # a crash is the failure this test exists to find
                failures.append(f"case {index} ({case.name}, {flow}): raised {error!r}")
                continue
            calls = log.read_text().splitlines() if log.exists() else []
            problem = check(case, flow, plan, code, out, err, calls)
            if problem:
                failures.append(f"case {index} ({case.name}, {flow}): {problem}")
    assert not failures, "\n".join(failures[:20])


def test_a_slice_through_the_real_entry_points(tmp_path: Path, recorder: tuple[Path, Path]) -> None:
    wrapper, log = recorder
    chooser = random.Random(SEED)
    accepted = [case for case in ALL_CASES if not case.refused]
    refused = [case for case in ALL_CASES if case.refused]
    picked = chooser.sample(accepted, SUBPROCESS_SLICE // 2) + chooser.sample(refused, SUBPROCESS_SLICE // 2)
    failures = []
    for index, case in enumerate(picked):
        plan = write_case(case, tmp_path / f"case-{index}")
        for flow in ("apply", "rollback"):
            log.unlink(missing_ok=True)
            env = {key: value for key, value in os.environ.items() if key != "PRNUM"}
            env.update(KUBECTL=str(wrapper), **case.env)
            result = subprocess.run([str(Path(sys.executable).parent / f"infra-{flow}"), f"--plan={plan}", *case.args],
                                    capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
            calls = log.read_text().splitlines() if log.exists() else []
            problem = check(case, flow, plan, result.returncode, result.stdout.rstrip("\n"), result.stderr, calls)
            if problem:
                failures.append(f"case {index} ({case.name}, {flow}): {problem}")
    assert not failures, "\n".join(failures)
