"""The attacks of issue 11 (items 3 and 8), each refused with the file and the field named; fast and pure.

The same attacks also run through the CLI in tests/core/test_fuzz_plans.py; here each one pins its message.
"""

import json
from pathlib import Path

import pytest

from cli.args import parse
from core.desired import from_flags, parse_desired, parse_workload_flag
from core.errors import InputError
from core.hints import CommandHint, ManifestHint
from core.k8s import MAX_QUANTITY, decimal_integer, parse_quantity
from core.plan import load_plan
from core.safeyaml import load_documents

FULLWIDTH_3, ARABIC_3 = "\uff13", "\u0663"
HUGE = "9" * 5000


def hpa(name: str = "web", target: str = "web", kind: str = "Deployment", api: str = "autoscaling/v2",
        spec: str = "maxReplicas: 4", metadata: str = "") -> str:
    return (f"apiVersion: {api}\nkind: HorizontalPodAutoscaler\nmetadata: {{name: {name}{metadata}}}\n"
            f"spec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: {kind}, name: {target}}}\n  {spec}\n")


SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: stolen}\nstringData: {token: x}\n"
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: evil}\n"
CRB = ("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: own}\n"
       "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n")


def refused(tmp_path: Path, plan: str, manifest: str | None = None) -> InputError:
    (tmp_path / "plan.yaml").write_text(plan)
    if manifest is not None:
        (tmp_path / "m.yaml").write_text(manifest)
    with pytest.raises(InputError) as caught:
        load_plan(tmp_path / "plan.yaml")
    return caught.value


def action(text: str) -> str:
    return f"namespace: ns\nactions:\n  - {text}\n"


PLAN_ATTACKS = [
    ('namespace: "ns\\n"\n', "namespace", "'ns\\n' is not a valid name"),
    ('namespace: ns\ntarget: "prod\\n"\n', "target", "'prod\\n' is not a valid name"),
    ("namespace: ns\ntarget: ../../etc\n", "target", "'../../etc' is not a valid name"),
    ("namespace: ns\ntarget: '**approved** [x](http://e)'\n", "target", "is not a valid name"),
    ('namespace: ns\ncontext: "prod\\n"\n', "context", "is not a kube context name"),
    ("namespace: ns\ncontext: --kubeconfig=/tmp/x\n", "context", "is not a kube context name"),
    (action('{type: scale_workload, name: "web\\n", replicas: 1}'), "actions[0].name", "is not a valid name"),
    (action('{type: update_resources, name: web, container: "app\\n", limits: {cpu: 1}}'), "actions[0].container",
     "'app\\n' is not a valid name"),
    (action('{type: update_resources, name: web, limits: {cpu: "1\\n"}}'), "actions[0].limits.cpu",
     "'1\\n' is not a Kubernetes quantity"),
    (action('{type: update_resources, name: web, limits: {"cpu\\n": 1}}'), "actions[0].limits.'cpu\\n'",
     "is not a resource name"),
    (action("{type: scale_workload, name: web, replicas: 1:30}"), "actions[0].replicas",
     "must be a whole number, not a string '1:30'"),
    (action("{type: scale_workload, name: web, replicas: 017}"), "actions[0].replicas", "not a string '017'"),
    (action("{type: scale_workload, name: web, replicas: 0x1F}"), "actions[0].replicas", "not a string '0x1F'"),
    (action("{type: scale_workload, name: web, replicas: true}"), "actions[0].replicas", "not a boolean"),
    (action(f"{{type: scale_workload, name: web, replicas: {FULLWIDTH_3}}}"), "actions[0].replicas",
     "must be a whole number, not a string"),
    (action(f"{{type: scale_workload, name: web, replicas: {HUGE}}}"), "actions[0].replicas", "(5000 characters)"),
    (action("{type: scale_workload, name: web, replicas: 10001}"), "actions[0].replicas", "out of range (0 to 10000)"),
    (action("{type: update_resources, name: web, requests: {cpu: 1e999999999}}"), "actions[0].requests.cpu",
     "'1e999999999' is not a Kubernetes quantity"),
    (action("{type: update_resources, name: web, requests: {cpu: 1.0e+999999999}}"), "actions[0].requests.cpu",
     "is not a Kubernetes quantity"),
    (action(f"{{type: update_resources, name: web, requests: {{cpu: {HUGE}}}}}"), "actions[0].requests.cpu",
     "(5000 characters) is not a Kubernetes quantity"),
    (action("{type: update_resources, name: web, requests: {memory: 99999999999999999999Ei}}"),
     "actions[0].requests.memory", "is not a Kubernetes quantity"),
    (action("{type: apply_hpa, name: web, minReplicas: 1:30, maxReplicas: 4}"), "actions[0].minReplicas",
     "not a string '1:30'"),
    (action("{type: apply_hpa, name: web, manifest: m.yaml, targetCPUUtilizationPercentage: 50}"),
     "actions[0].manifest", "as a manifest or as minReplicas/maxReplicas, not both"),
    (action("{type: 'scale_workload\\n', name: web}"), "actions[0].type", "unknown action"),
    (action("{type: [scale_workload], name: web}"), "actions[0].type", "unknown action"),
    ("namespace: ns\ngeneratedAt: 2024-13-45\nactions: []\n", None, None),
]


@pytest.mark.parametrize(("plan", "field", "message"), PLAN_ATTACKS)
def test_a_hostile_plan_field_is_refused_by_name(tmp_path: Path, plan: str, field: str | None,
                                                 message: str | None) -> None:
    if field is None:  # a YAML 1.1 timestamp that is no date stays text instead of crashing the constructor
        assert load_plan_text(tmp_path, plan).namespace == "ns"
        return
    error = refused(tmp_path, plan)
    assert error.source == str(tmp_path / "plan.yaml")
    assert error.field == field
    assert message in error.message
    assert "\n" not in str(error)


def load_plan_text(tmp_path: Path, text: str) -> object:
    (tmp_path / "plan.yaml").write_text(text)
    return load_plan(tmp_path / "plan.yaml")


MANIFEST_ACTION = action("{type: apply_hpa, name: web, manifest: m.yaml}")
HINT_PLAN = ("namespace: ns\nactions: [{type: scale_workload, name: web, replicas: 2}]\n"
             "rollbackHints: [m.yaml]\n")
MANIFEST_ATTACKS = [
    ("", "file", "is empty; a manifest holds exactly one HorizontalPodAutoscaler"),
    (SECRET, "kind", "'Secret' is not allowed"),
    (NAMESPACE + "---\n" + SECRET, "file", "holds 2 YAML documents"),
    (hpa() + "---\n" + SECRET, "file", "holds 2 YAML documents"),
    (CRB, "kind", "'ClusterRoleBinding' is not allowed"),
    ("apiVersion: v1\nkind: List\nitems:\n- " + hpa().replace("\n", "\n  "), "kind", "'List' is not allowed"),
    ("- " + hpa().replace("\n", "\n  "), "document", "a list is not a Kubernetes object"),
    (hpa(target="api"), "spec.scaleTargetRef", "Deployment 'api' is not"),
    (hpa(kind="StatefulSet"), "spec.scaleTargetRef", "StatefulSet 'web' is not"),
    (hpa(kind="ReplicaSet"), "spec.scaleTargetRef.kind", "'ReplicaSet' is not supported"),
    (hpa(metadata=", namespace: kube-system"), "metadata.namespace", "'kube-system' is not the plan's namespace"),
    (hpa(name='"web\\n"'), "metadata.name", "is not a valid name"),
    (hpa(spec="minReplicas: 5\n  maxReplicas: 4"), "spec.minReplicas", "5 is more than maxReplicas 4"),
    (hpa(spec="maxReplicas: 1:30"), "spec.maxReplicas", "not a string '1:30'"),
    (hpa(spec=f"maxReplicas: {HUGE}"), "spec.maxReplicas", "(5000 characters)"),
    (hpa(spec="maxReplicas: 10001"), "spec.maxReplicas", "out of range"),
    (hpa(spec="minReplicas: 0\n  maxReplicas: 4"), "spec.minReplicas", "out of range"),
    (hpa(spec="maxReplicas: 4\n  targetCPUUtilizationPercentage: 50"), "spec.targetCPUUtilizationPercentage",
     "unknown field"),
    (hpa(api="autoscaling/v1", spec="maxReplicas: 4\n  metrics: []"), "spec.metrics", "unknown field"),
    (hpa(api="autoscaling/v2beta2"), "apiVersion", "is not supported"),
    (hpa() + "status: {currentReplicas: 1}\n", "status", "unknown field"),
    (hpa().replace("apiVersion: apps/v1, ", ""), "spec.scaleTargetRef.apiVersion", "is required"),
    # kubectl's parser lets a merge key win over the explicit key PyYAML keeps: hpa/web would target db, max 50000
    (hpa(name="web, <<: {name: db}"), "line 3", "merge key '<<' at key metadata.<<: merge keys are not allowed"),
    (hpa(spec="maxReplicas: 5\n  <<: {maxReplicas: 50000}"), "line 7", "merge key '<<' at key spec.<<"),
    (hpa(name="&unused web"), "line 3", "anchor &unused at key metadata.name: anchors and aliases are not allowed"),
    (hpa(spec="maxReplicas: !!int 4"), "line 6", "tag !!int at key spec.maxReplicas: explicit tags are not allowed"),
    ("!HorizontalPodAutoscaler " + hpa(), "line 1", "tag !HorizontalPodAutoscaler at key apiVersion"),
]


@pytest.mark.parametrize(("manifest", "field", "message"), MANIFEST_ATTACKS)
@pytest.mark.parametrize("plan", [MANIFEST_ACTION, HINT_PLAN], ids=["apply_hpa-manifest", "hint-file"])
def test_a_manifest_holds_exactly_one_hpa_for_the_plan(tmp_path: Path, plan: str, manifest: str, field: str,
                                                      message: str) -> None:
    error = refused(tmp_path, plan, manifest)
    assert error.source.startswith(f"{tmp_path / 'plan.yaml'} (")
    assert error.source.endswith(": m.yaml)")
    assert error.field == field
    assert message in error.message


def test_the_action_manifest_must_name_the_actions_hpa(tmp_path: Path) -> None:
    error = refused(tmp_path, MANIFEST_ACTION, hpa(name="other", target="web"))
    assert (error.field, error.message) == ("metadata.name", "'other' is not the action's HPA 'web'")


def test_autoscaling_v1_and_v2_manifests_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "v1.yaml").write_text(hpa(api="autoscaling/v1", spec="maxReplicas: 4\n  "
                                                                      "targetCPUUtilizationPercentage: 60"))
    v2 = hpa(target="db", kind="StatefulSet", metadata=", namespace: ns")
    (tmp_path / "v2.yaml").write_text("# a comment\n" + v2)
    plan = load_plan_text(tmp_path, "namespace: ns\nactions:\n  - {type: apply_hpa, name: web, manifest: v1.yaml}\n"
                                    "  - {type: scale_workload, kind: StatefulSet, name: db, replicas: 1}\n"
                                    "rollbackHints: [v2.yaml, kubectl apply -f v1.yaml]\n")
    assert plan.actions[0].manifest == "v1.yaml"  # type: ignore[attr-defined]
    manifest, command = plan.hints  # type: ignore[attr-defined]
    assert isinstance(manifest, ManifestHint) and isinstance(command, CommandHint)
    assert (manifest.path, manifest.objects) == ("v2.yaml", (("HorizontalPodAutoscaler", "web"),))
    assert manifest.data == (tmp_path / "v2.yaml").read_bytes()  # the bytes read once, kept for the gate
    assert json.loads(manifest.body) == load_documents(v2, "v2.yaml")[0]  # what kubectl receives on stdin
    assert (command.text, command.args) == ("kubectl apply -f v1.yaml", ("apply", "-f", "v1.yaml"))
    assert command.manifest == plan.actions[0].file  # type: ignore[attr-defined]


HINT_ATTACKS = [
    f"kubectl scale deployment/web --replicas={FULLWIDTH_3}",
    f"kubectl scale deployment/web --replicas={ARABIC_3}",
    f"kubectl scale deployment/web --replicas={HUGE}",
    "kubectl scale deployment/web --replicas=10001",
    "kubectl scale deployment/web --replicas=-1",
    "kubectl scale deployment/web --replicas=+1",
    f"kubectl scale deployment/web --replicas=1 --current-replicas={FULLWIDTH_3}",
    f"kubectl rollout undo deployment/web --to-revision={FULLWIDTH_3}",
]


@pytest.mark.parametrize("hint", HINT_ATTACKS)
def test_hint_integers_are_plain_ascii_decimal(tmp_path: Path, hint: str) -> None:
    error = refused(tmp_path, f"namespace: ns\nactions: [{{type: scale_workload, name: web, replicas: 1}}]\n"
                              f"rollbackHints: ['{hint}']\n")
    assert error.field == "rollbackHints[0]"
    assert "must be a whole number" in error.message
    assert len(error.message) < 200


@pytest.mark.parametrize("value", [FULLWIDTH_3, ARABIC_3, HUGE, "0", "-1", "+7", " 7", "7\n", "0x7", "2147483648", ""])
@pytest.mark.parametrize("where", ["--pr", "PRNUM"])
def test_pr_numbers_are_ascii_digits_and_bounded(value: str, where: str) -> None:
    argv, env = ([f"--pr={value}"], {}) if where == "--pr" else (["--execute"], {"PRNUM": value})
    if where == "PRNUM" and not value:
        assert parse("apply", argv, env).pr is None  # an empty PRNUM is no PRNUM
        return
    with pytest.raises(InputError) as caught:
        parse("apply", argv, env)
    assert (caught.value.source, caught.value.field) == ("arguments", where)
    assert len(str(caught.value)) < 200


def test_pr_numbers_in_range_are_read() -> None:
    assert parse("apply", ["--pr=2147483647"], {}).pr == 2**31 - 1
    assert parse("apply", ["--execute"], {"PRNUM": "12"}).pr == 12


@pytest.mark.parametrize("flag", [f"web:{FULLWIDTH_3}", f"Deployment:web:{ARABIC_3}", f"web:{HUGE}", "web:10001",
                                  "web:+1", "web\n:1", "web:1\n"])
def test_the_seeds_workload_flag_takes_plain_decimal(flag: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_workload_flag(flag, "--workload[0]")
    assert caught.value.field == "--workload[0]"
    assert len(str(caught.value)) < 200


def test_decimal_integer_takes_plain_ascii_decimal_in_range() -> None:
    assert decimal_integer("0", 0, 5) == 0
    assert decimal_integer("5", 0, 5) == 5
    refused = ("6", "-1", "05", "5\n", FULLWIDTH_3, HUGE, "", "1_0")
    assert [decimal_integer(text, 0, 5) for text in refused] == [None] * len(refused)


def test_quantities_are_bounded_and_exact() -> None:
    assert parse_quantity("250m") == parse_quantity("0.25")
    assert parse_quantity("1Gi") == 2**30
    assert parse_quantity("1e3") == parse_quantity("1k") == 1000
    assert parse_quantity("2E") == 2 * 10**18
    assert parse_quantity("1Ei") == 2**60
    assert parse_quantity("7Ei") == 7 * 2**60
    assert parse_quantity("8Ei") is None  # 2**63 base units, one past what Kubernetes keeps
    assert parse_quantity("9223372036854775807") == MAX_QUANTITY
    for text in ("1e999999999", HUGE, "1e100", "1e99", "0.0000000001", "250m\n", " 1", "1 ", "\uff11", "inf", "nan"):
        assert parse_quantity(text) is None, text


@pytest.mark.parametrize(("text", "value"), [
    ("a: 1:30\n", "1:30"), ("a: 017\n", "017"), ("a: 0x1F\n", "0x1F"), ("a: 0o17\n", "0o17"), ("a: 1_000\n", "1_000"),
    ("a: +3\n", "+3"), ("a: .inf\n", ".inf"), ("a: 0.5\n", "0.5"), ("a: 2024-01-01\n", "2024-01-01"),
    (f"a: {HUGE}\n", HUGE), ("a: 12\n", 12), ("a: -3\n", -3), ("a: 0\n", 0),
])
def test_yaml_numbers_that_are_not_plain_decimal_stay_text(text: str, value: object) -> None:
    assert load_documents(text, "x.yaml") == [{"a": value}]


@pytest.mark.parametrize(("document", "field"), [
    ({"target": "prod\n", "namespace": "ns", "workloads": [{"name": "web", "replicas": 1}]}, "target"),
    ({"target": "../../etc", "namespace": "ns", "workloads": [{"name": "web", "replicas": 1}]}, "target"),
    ({"target": "t", "namespace": "ns", "context": "-x", "workloads": [{"name": "web", "replicas": 1}]}, "context"),
    ({"target": "t", "namespace": "ns", "workloads": [{"name": "web", "replicas": "1:30"}]}, "workloads[0].replicas"),
    ({"target": "t", "namespace": "ns",
      "workloads": [{"name": "web", "containers": {"app\n": {"limits": {"cpu": 1}}}}]},
     "workloads[0].containers.'app\\n'"),
    ({"target": "t", "namespace": "ns", "workloads": [{"name": "web", "hpa": {"maxReplicas": True}}]},
     "workloads[0].hpa.maxReplicas"),
])
def test_desired_state_files_follow_the_same_rules(document: object, field: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_desired(document, "desired.yaml")
    assert caught.value.field == field


def test_the_seeds_flags_check_the_context_too() -> None:
    with pytest.raises(InputError) as caught:
        from_flags("t", "ns", ["web:1"], context="--kubeconfig=/tmp/x")
    assert caught.value.field == "--context"
