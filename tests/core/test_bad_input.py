"""Bad plans and arguments: exit 2, one line naming the file and field, no traceback, no kubectl process.

Each case runs the real `infra-rollback`/`infra-apply` entry points in a subprocess with KUBECTL pointing at a
wrapper that records every call it gets, so "no kubectl call" is observed rather than assumed.
"""

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

GOOD_PLAN = """\
namespace: testns
actions:
  - {type: scale_workload, name: web, replicas: 2}
rollbackHints:
  - previous-hpa.yaml
"""
HPA = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}, minReplicas: 1, maxReplicas: 3}
"""


def with_action(action: str) -> str:
    return f"namespace: testns\nactions:\n  - {action}\n"


def with_hint(hint: str) -> str:
    return f"namespace: testns\nactions: []\nrollbackHints:\n  - {hint}\n"


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b]\n"

# (case id, plan text or bytes or None for "no file", extra CLI args, expected field text in the error line)
CASES: list[tuple[str, str | bytes | None, list[str], str]] = [
    ("missing-file", None, [], "file: not found"),
    ("not-yaml", "namespace: [unclosed\n", [], "not valid YAML"),
    ("binary", b"\x00\x01\x02namespace", [], "file: is binary"),
    ("not-utf8", b"namespace: caf\xe9\n", [], "not UTF-8"),
    ("yaml-bomb", BOMB, [], "anchors and aliases are not allowed"),
    ("custom-tag", "namespace: !!python/object:os.system x\n", [], "not valid YAML"),
    ("merge-key", "namespace: testns\nactions: []\n<<: {namespace: kube-system}\n", [],
     "line 3: not valid YAML: merge key '<<'"),
    ("unused-anchor", "namespace: &ns testns\nactions: []\n", [],
     "line 1: not valid YAML: anchor &ns at key namespace: anchors and aliases are not allowed"),
    ("str-tag", "namespace: testns\nactions:\n  - {type: scale_workload, name: !!str web, replicas: 2}\n", [],
     "line 3: not valid YAML: tag !!str at key actions[0].name: explicit tags are not allowed"),
    ("local-tag", "namespace: !foo testns\n", [], "line 1: not valid YAML: tag !foo at key namespace"),
    ("top-level-list", "- namespace: testns\n", [], "document: must be a mapping"),
    ("empty", "", [], "file: is empty"),
    ("missing-namespace", "actions: []\n", [], "namespace: is required"),
    ("uppercase-namespace", "namespace: Prod_NS\nactions: []\n", [], "namespace: 'Prod_NS' is not a valid name"),
    ("duplicate-key", "namespace: a\nnamespace: b\n", [], "duplicate key 'namespace'"),
    ("unknown-top-field", "namespace: testns\nactoins: []\n", [], "actoins: unknown field"),
    ("name-semicolon", with_action("{type: scale_workload, name: 'web;rm -rf /', replicas: 2}"), [],
     "actions[0].name"),
    ("name-subshell", with_action("{type: scale_workload, name: '$(id)', replicas: 2}"), [], "actions[0].name"),
    ("unknown-action", with_action("{type: delete_namespace, name: web}"), [],
     "actions[0].type: unknown action 'delete_namespace'"),
    ("missing-type", with_action("{name: web, replicas: 2}"), [], "actions[0].type: is required"),
    ("negative-replicas", with_action("{type: scale_workload, name: web, replicas: -1}"), [],
     "actions[0].replicas: -1 is out of range"),
    ("absurd-replicas", with_action("{type: scale_workload, name: web, replicas: 5000000}"), [],
     "actions[0].replicas"),
    ("string-replicas", with_action("{type: scale_workload, name: web, replicas: many}"), [],
     "actions[0].replicas: must be a whole number"),
    ("bad-cpu", with_action("{type: update_resources, name: web, requests: {cpu: lots}}"), [],
     "actions[0].requests.cpu: 'lots' is not a Kubernetes quantity"),
    ("bad-memory", with_action("{type: update_resources, name: web, limits: {memory: 512MB}}"), [],
     "actions[0].limits.memory"),
    ("request-over-limit", with_action("{type: update_resources, name: web, requests: {cpu: '2'}, limits: {cpu: 1}}"),
     [], "actions[0].requests.cpu: 2 is more than the limit 1"),
    ("hpa-min-over-max", with_action("{type: apply_hpa, name: web, minReplicas: 5, maxReplicas: 2}"), [],
     "actions[0].minReplicas: 5 is more than maxReplicas 2"),
    ("bad-kind", with_action("{type: scale_workload, kind: DaemonSet, name: web, replicas: 1}"), [],
     "actions[0].kind"),
    ("hint-etc-passwd", with_hint("../../etc/passwd"), [], "rollbackHints[0]: '../../etc/passwd' points outside"),
    ("hint-absolute", with_hint("/etc/passwd"), [], "rollbackHints[0]: '/etc/passwd' is an absolute path"),
    ("hint-missing-file", with_hint("nowhere.yaml"), [], "rollbackHints[0]: 'nowhere.yaml' does not exist"),
    ("hint-delete-ns", with_hint("kubectl delete ns prod"), [], "rollbackHints[0]: needs one resource of kind hpa"),
    ("hint-scales-another-workload", GOOD_PLAN.replace("previous-hpa.yaml", "kubectl scale deployment/payments "
                                                       "--replicas=0"), [],
     "rollbackHints[0]: deployment/payments is not one of the plan's workloads (deployment/web); a hint acts only"),
    ("hint-deletes-another-hpa", GOOD_PLAN.replace("previous-hpa.yaml", "kubectl delete hpa payments"), [],
     "rollbackHints[0]: hpa/payments is not one of the plan's HPAs (web); a hint acts only on those"),
    ("hint-undoes-another-workload", GOOD_PLAN.replace("previous-hpa.yaml", "kubectl rollout undo sts/payments"), [],
     "rollbackHints[0]: statefulset/payments is not one of the plan's workloads (deployment/web)"),
    ("hint-exec", with_hint("kubectl exec web -- sh"), [], "rollbackHints[0]: kubectl exec web is not allowed"),
    ("hint-other-namespace", with_hint("kubectl rollout undo deployment/web -n kube-system"), [],
     "rollbackHints[0]: namespace 'kube-system' is not the plan's namespace 'testns'"),
    ("hint-semicolon", with_hint("'kubectl rollout undo deployment/web; curl evil'"), [],
     "rollbackHints[0]: shell characters"),
    ("hint-subshell", with_hint("'kubectl scale deployment/$(id) --replicas=1'"), [], "rollbackHints[0]: shell"),
    ("hint-context-flag", with_hint("kubectl rollout undo deployment/web --context=prod"), [],
     "rollbackHints[0]: flag '--context' is not allowed"),
    ("hint-not-kubectl", with_hint("'rm -rf /'"), [],
     "rollbackHints[0]: 'rm -rf /' is neither a manifest path nor a kubectl command"),
    ("pr-not-number", GOOD_PLAN, ["--pr=abc"], "arguments: --pr: 'abc' is not a pull request number"),
    ("unknown-flag", GOOD_PLAN, ["--yolo"], "arguments: --yolo: unknown flag (known: -h, --help, --plan"),
    ("both-modes", GOOD_PLAN, ["--dry-run", "--execute"], "arguments: --execute: not allowed with argument --dry-run"),
    ("plan-is-directory", "DIR", [], "file: is a directory"),
]


@pytest.fixture
def recording_kubectl(tmp_path: Path) -> tuple[Path, Path]:
    """A KUBECTL stand-in that appends each call to a log file, so a test can prove none happened."""
    log = tmp_path / "kubectl-calls.log"
    wrapper = tmp_path / "kubectl-recorder"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return wrapper, log


RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_cli(tmp_path: Path, recording_kubectl: tuple[Path, Path]) -> RunCli:
    wrapper, _ = recording_kubectl

    def run(flow: str, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECTL": str(wrapper), **(extra_env or {})}
        env.pop("PRNUM", None)
        code = f"import sys; from cli.main import run; sys.exit(run({flow!r}, sys.argv[1:]))"
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=60)

    return run


@pytest.mark.parametrize(("case", "content", "args", "expected"), CASES, ids=[case[0] for case in CASES])
@pytest.mark.parametrize("flow", ["rollback", "apply"])
def test_bad_input_is_one_clear_line_and_exit_2(
    tmp_path: Path, run_cli: RunCli, recording_kubectl: tuple[Path, Path],
    flow: str, case: str, content: str | bytes | None, args: list[str], expected: str,
) -> None:
    plan_dir = tmp_path / "plans"
    plan_dir.mkdir()
    (plan_dir / "previous-hpa.yaml").write_text(HPA)
    plan = plan_dir / "plan.yaml"
    if content == "DIR":
        plan.mkdir()
    elif isinstance(content, bytes):
        plan.write_bytes(content)
    elif content is not None:
        plan.write_text(content)

    result = run_cli(flow, f"--plan={plan}", *args)

    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    source = "arguments" if case in {"pr-not-number", "unknown-flag", "both-modes"} else str(plan)
    assert source in lines[0]
    assert expected in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    _, log = recording_kubectl
    assert not log.exists(), f"kubectl was called: {log.read_text()}"


def test_bad_input_fails_before_execute_gate(run_cli: RunCli, tmp_path: Path,
                                             recording_kubectl: tuple[Path, Path]) -> None:
    """--execute with a bad plan is still bad input (exit 2), never a refusal or an execution."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(with_action("{type: scale_workload, name: 'web;id', replicas: 2}"))
    result = run_cli("apply", f"--plan={plan}", "--execute", "--pr=7")
    assert result.returncode == 2
    assert "actions[0].name" in result.stderr
    assert "Refusing" not in result.stdout
    assert not recording_kubectl[1].exists()


def test_there_are_at_least_25_bad_input_cases() -> None:
    assert len(CASES) >= 25
