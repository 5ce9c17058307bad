"""`infra-scale` end to end against the sandbox cluster (real kubectl): dry runs, nothing to do, bad input."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.scale import run
from core.plan import load_plan
from tests.fixtures.kube import KubeSandbox
from tests.scale.conftest import NAMESPACE, write_desired

PLAN = Path("ops/plans/infra-scale/staging/plan.yaml")
SEED_FLAGS = ["--dry-run", "--target=staging", f"--namespace={NAMESPACE}"]
MATCHING = f"""target: staging
namespace: {NAMESPACE}
workloads:
  - name: web
    replicas: 2
    containers:
      app:
        requests: {{cpu: "0.25", memory: 256Mi}}
  - name: api
    hpa: {{minReplicas: 2, maxReplicas: 6}}
"""


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_desired_equals_live_is_nothing_to_do(cluster: KubeSandbox, tmp_path: Path) -> None:
    requests_before = len(cluster.requests())
    code, out, err = cli("--desired", write_desired(tmp_path / "d.yaml", MATCHING))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[-1] == "succeeded"
    assert any(line.startswith("note: nothing to do: namespace assistant-staging already matches") for line in lines)
    assert not any(line.startswith("preview:") for line in lines)
    assert not PLAN.exists() and not Path("ops").exists()
    lists = [r["path"].rsplit("/", 1)[-1] for r in cluster.requests()[requests_before:]
             if r["method"] == "GET" and f"/namespaces/{NAMESPACE}/" in r["path"]]
    assert sorted(lists) == ["deployments", "horizontalpodautoscalers", "statefulsets"]  # one batched get
    assert cluster.count_requests(method="PATCH") == 0 and cluster.count_requests(method="PUT") == 0


def test_seed_flags_one_difference_one_action(cluster: KubeSandbox) -> None:
    code, out, _ = cli(*SEED_FLAGS, "--workload=Deployment:web:3", "--workload=Deployment:api:2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "preview: kubectl -n assistant-staging scale deployment/web --replicas=3"
    assert "note: plan written to ops/plans/infra-scale/staging/plan.yaml (1 action)" in lines
    assert lines[-1] == "succeeded"
    document = json.loads(out[out.index("{") : out.rindex("}") + 1])
    assert document["ok"] is True and document["executed"] is False and document["namespace"] == NAMESPACE
    assert [r["action"] for r in document["results"]] == ["scale_workload"]
    plan = load_plan(PLAN)
    assert len(plan.actions) == 1 and plan.target == "staging"
    web = cluster.get("deployment", NAMESPACE, "web")
    assert web is not None and web["spec"]["replicas"] == 2  # nothing changed in the cluster


def test_hpa_managed_workload_gets_hpa_bounds(cluster: KubeSandbox) -> None:
    code, out, _ = cli(*SEED_FLAGS, "--workload=Deployment:api:4")
    assert code == 0
    assert "preview: kubectl -n assistant-staging apply -f -" in out
    assert "scale deployment/api" not in out
    assert "note: hpa/api for deployment/api: min 4, max 6, cpu 80%" in out
    plan = load_plan(PLAN)
    assert [a.type for a in plan.actions] == ["apply_hpa"]
    manifest = (PLAN.parent / "previous-hpa-api.yaml").read_text()
    assert "minReplicas: 2" in manifest and "status" not in manifest


BAD = [
    (["--desired=missing.yaml"], "error: missing.yaml: file: not found"),
    ([*SEED_FLAGS, "--workload=Deployment:web"], "error: arguments: --workload[0]: 'Deployment:web' is not KIND:NAME"),
    (
        [*SEED_FLAGS, "--workload=Deployment:ghost:1"],
        "error: arguments: --workload[0].name: deployment/ghost does not exist in namespace 'assistant-staging'",
    ),
    (["--dry-run", "--namespace=x", "--workload=web:1"], "error: arguments: --target: is required"),
    ([*SEED_FLAGS, "--workload=web:1", "--bogus"], "error: arguments: --bogus: unknown flag"),
]


@pytest.mark.parametrize(("argv", "first_line"), BAD)
def test_bad_input_one_line_exit_2_nothing_written(cluster: KubeSandbox, argv: list[str], first_line: str) -> None:
    code, out, err = cli(*argv)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(first_line), err
    assert not Path("ops").exists()


def test_bad_desired_file_exit_2(cluster: KubeSandbox, tmp_path: Path) -> None:
    path = write_desired(tmp_path / "bad.yaml", MATCHING.replace("replicas: 2", "replicas: lots"))
    code, out, err = cli("--desired", path)
    assert (code, out) == (2, "")
    assert err == f"error: {path}: workloads[0].replicas: must be a whole number, not a string 'lots'\n"
    assert cluster.count_requests(path_regex=NAMESPACE) == 0  # rejected before kubectl ran


def test_execute_without_github_settings_is_bad_input(cluster: KubeSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GH_OWNER", "GH_REPO", "GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_TOKEN_BLOCK"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = cli("--execute", "--target=staging", f"--namespace={NAMESPACE}", "--workload=web:3")
    assert code == 2 and err.startswith("error: environment: GH_OWNER: is required for --execute")
    assert not Path("ops").exists()


def test_unreachable_cluster_fails_cleanly(
    cluster: KubeSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "dead.kubeconfig"
    config.write_text(cluster.kubeconfig.read_text().replace(cluster.url, "http://127.0.0.1:9"))
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.setattr("core.retry.time.sleep", lambda _: None)
    code, out, _ = cli(*SEED_FLAGS, "--workload=web:3")
    assert code == 1 and out.splitlines()[-1] == "failed"
    assert "cannot read the live state" in out and not Path("ops").exists()


def test_entry_point_dry_run_does_not_import_prefect(cluster: KubeSandbox) -> None:
    probe = (
        "import sys, cli.scale; code = cli.scale.run(sys.argv[1:]); "
        "assert 'prefect' not in sys.modules, 'prefect imported'; sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *SEED_FLAGS, "--workload=web:3"],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "succeeded"
