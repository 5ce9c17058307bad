"""Issue 11, tried as an attacker would: through the CLI (and the flow, for event parameters), against the GitHub
test server, real kubectl and the sandbox API server. Every attack is refused with the gate's documented exit
code (0, last line `skipped`), one reason, no traceback, no token in any output, and the API server's request log
shows that nothing was changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.execution.conftest import NAMESPACE, PLAN_PATH, REPO, World

PLAN_DIR = PLAN_PATH.rsplit("/", 1)[0]
HPA = f"""\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: web, namespace: {NAMESPACE}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  minReplicas: 2
  maxReplicas: {{max}}
"""
MANIFEST_PLAN = f"""\
namespace: {NAMESPACE}
target: prod
actions:
  - {{type: scale_workload, name: web, replicas: 4}}
  - {{type: apply_hpa, name: web, manifest: hpa.yaml}}
rollbackHints: [hint.yaml]
"""
MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def hpa(max_replicas: int) -> str:
    return HPA.replace("{max}", str(max_replicas))


def with_files(world: World, local: dict[str, str], pr: dict[str, str | None]) -> None:
    """The plan that reads hpa.yaml and hint.yaml, with these files in the checkout and at the PR head."""
    world.write_plan(MANIFEST_PLAN)
    for name, text in local.items():
        (world.plan.parent / name).write_text(text)
    world.github.push_commit(REPO, world.pr, {f"{PLAN_DIR}/{name}": text for name, text in pr.items()})


def assert_refused(world: World, result: subprocess.CompletedProcess[str], reason: str, whole: bool = True) -> None:
    """Exit 0, `Refusing to execute: <reason>.` then `skipped` (`whole=False`: the reason starts so)."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    refusal, last = result.stdout.splitlines()[-2:]
    assert last == "skipped", output
    assert refusal == f"Refusing to execute: {reason}." if whole else refusal.startswith(
        f"Refusing to execute: {reason}"), output
    assert "Traceback" not in output
    assert world.env["GITHUB_TOKEN"] not in output
    mutations = [request for request in world.kube.requests() if request.get("method") in MUTATING]
    assert mutations == [], "nothing was changed in the cluster"
    assert world.replicas("web") == 2 and world.hpa("web") is None


def execute(world: World, flow: str = "apply") -> subprocess.CompletedProcess[str]:
    world.kube.clear_requests()
    return world.cli(flow, "--execute", f"--pr={world.pr}")


def test_a_manifest_edited_in_the_checkout_is_refused(world: World) -> None:
    with_files(world, {"hpa.yaml": hpa(50), "hint.yaml": hpa(8)}, {"hpa.yaml": hpa(8), "hint.yaml": hpa(8)})
    world.label("execute-plan")
    result = execute(world)
    head = world.github.head_sha(REPO, world.pr)[:7]
    assert_refused(world, result, f"{PLAN_DIR}/hpa.yaml here (blob ", whole=False)
    assert f"is not the one PR #{world.pr} carries at {head}" in result.stdout


def test_a_manifest_missing_from_the_pr_is_refused(world: World) -> None:
    with_files(world, {"hpa.yaml": hpa(8), "hint.yaml": hpa(8)}, {"hint.yaml": hpa(8)})
    world.label("execute-plan")
    head = world.github.head_sha(REPO, world.pr)[:7]
    assert_refused(world, execute(world),
                   f"file {PLAN_DIR}/hpa.yaml (read by the plan) not found in PR #{world.pr} at head {head}")


def test_a_hint_file_that_differs_from_the_pr_is_refused(world: World) -> None:
    with_files(world, {"hpa.yaml": hpa(8), "hint.yaml": hpa(99)}, {"hpa.yaml": hpa(8), "hint.yaml": hpa(8)})
    world.label("execute-plan")
    result = execute(world)
    assert_refused(world, result, f"{PLAN_DIR}/hint.yaml here (blob ", whole=False)


def test_the_same_files_as_the_pr_run(world: World) -> None:
    with_files(world, {"hpa.yaml": hpa(8), "hint.yaml": hpa(8)}, {"hpa.yaml": hpa(8), "hint.yaml": hpa(8)})
    world.label("execute-plan")
    result = execute(world)
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "succeeded", result.stdout + result.stderr
    created = world.hpa("web")
    assert created is not None and created["spec"]["maxReplicas"] == 8


def test_a_draft_pr_is_refused(world: World) -> None:
    world.label("execute-plan")
    world.github.set_draft(REPO, world.pr, True)
    assert_refused(world, execute(world), f"PR #{world.pr} is a draft")


@pytest.mark.parametrize("push", ["commit", "force-push"])
def test_a_push_after_the_label_is_refused(world: World, push: str) -> None:
    world.label("execute-plan")
    if push == "commit":  # the plan in the checkout still matches the PR: only the timeline tells
        sha = world.github.push_commit(REPO, world.pr, {"README.md": "innocent\n"})
        pushed = f"commit {sha[:7]}"
    else:
        sha = world.github.force_push(REPO, world.pr, {PLAN_PATH: world.plan_text})
        pushed = f"commit {sha[:7]}, force-push to {sha[:7]}"
    assert_refused(world, execute(world), f"PR #{world.pr} changed after label 'execute-plan' was added "
                                          f"({pushed}); add the label again to run the new head")


def test_a_label_added_by_an_untrusted_bot_is_refused(world: World) -> None:
    world.github.add_user("helper[bot]", type="Bot")
    world.github.add_collaborator(REPO, "helper[bot]", "write")
    world.label("execute-plan", actor="helper[bot]")
    assert_refused(world, execute(world), "label 'execute-plan' was added by bot account 'helper[bot]', which is "
                                          "not a trusted bot (INFRA_TRUSTED_BOTS)")
    world.env["INFRA_TRUSTED_BOTS"] = "helper[bot]"
    trusted = execute(world)
    assert trusted.stdout.splitlines()[-1] == "succeeded", trusted.stdout + trusted.stderr


@pytest.mark.parametrize(("fault", "reason_part"), [
    ({"status": 200, "raw": "<html>maintenance</html>"}, "was not a JSON object with 'number'"),
    ({"status": 301, "headers": {"Location": "/repos/mallory/infra/pulls/1"}}, "answered with a redirect (301)"),
])
def test_a_github_answer_that_is_not_github_is_refused(world: World, fault: dict[str, object],
                                                       reason_part: str) -> None:
    world.github.schema_check_enabled = False
    world.label("execute-plan")
    world.github.inject("GET", rf"/pulls/{world.pr}$", times=50, **fault)  # type: ignore[arg-type]
    result = execute(world)
    assert reason_part in result.stdout.splitlines()[-2]
    assert_refused(world, result, "GitHub", whole=False)


def test_an_event_naming_another_repository_is_refused_before_any_github_read(world: World) -> None:
    """The webhook's `repository` parameter: an attacker's own repository, labelled by its admin (the attacker)."""
    world.github.create_repo("mallory/infra", files={PLAN_PATH: world.plan_text})
    world.github.add_user("mallory")
    pr = world.github.open_pr("mallory/infra", head="x", author="mallory", files={PLAN_PATH: world.plan_text})
    world.github.add_label("mallory/infra", pr, "execute-plan", "mallory")
    world.kube.clear_requests()
    before = len(world.github.log)
    script = ("from flows.apply import infra_apply\n"
              f"state = infra_apply(plan={PLAN_PATH!r}, pr={pr}, execute=True, repository='mallory/infra', "
              "return_state=True)\nreport = state.result(raise_on_failure=False)\n"
              "print(report.render())\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=world.root, env=world.env, capture_output=True,
                            text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-2:] == [
        "Refusing to execute: repository mallory/infra is not served by this worker (serves: acme/infra; set "
        "GH_OWNER/GH_REPO or INFRA_REPOSITORIES).", "skipped"], result.stdout
    assert len(world.github.log) == before, "GitHub was not asked"
    assert [r for r in world.kube.requests() if r.get("method") in MUTATING] == []
    assert world.replicas("web") == 2
    assert world.env["GITHUB_TOKEN"] not in result.stdout + result.stderr


def test_cli_output_has_no_token_even_when_github_echoes_it(world: World) -> None:
    token = world.env["GITHUB_TOKEN"]
    world.github.schema_check_enabled = False
    world.label("execute-plan")
    world.github.inject("GET", rf"/pulls/{world.pr}$", 422, times=5,
                        body={"message": f"token {token} is not allowed here; also ghp_{'A' * 36}", "errors": []})
    result = execute(world)
    assert_refused(world, result, f"GitHub answered 422 while reading PR #{world.pr}", whole=False)
    assert "token *** is not allowed here; also ***" in result.stdout
    assert "ghp_AAAA" not in result.stdout + result.stderr


def test_a_merge_key_hpa_manifest_is_bad_input_and_creates_nothing(world: World) -> None:
    """Issue 25: PyYAML kept `name: web` and `maxReplicas: 5`, kubectl's parser let the merge keys win and created
    hpa/web targeting db with max 50000. The manifest is now refused (exit 2, file, line and key), before the gate."""
    world.kube.create_deployment(NAMESPACE, "db", replicas=1)
    merged = (f"apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: web, namespace: "
              f"{NAMESPACE}}}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web, "
              f"<<: {{name: db}}}}\n  minReplicas: 2\n  maxReplicas: 5\n  <<: {{maxReplicas: 50000}}\n")
    with_files(world, {"hpa.yaml": merged, "hint.yaml": hpa(8)}, {"hpa.yaml": merged, "hint.yaml": hpa(8)})
    world.label("execute-plan")
    result = execute(world)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"error: {PLAN_PATH} (actions[1].manifest: hpa.yaml): line 5: not valid YAML: merge key '<<' at key "
        "spec.scaleTargetRef.<<: merge keys are not allowed"], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert [r for r in world.kube.requests() if r.get("method") in MUTATING] == []
    assert world.hpa("web") is None and world.replicas("web") == 2


SWAP = """\
import sys
from pathlib import Path
from pathlib import Path

import tasks.plan
from cli.main import run

parse, approved, other = tasks.plan.read_plan, Path(sys.argv[1]).read_text(), Path(sys.argv[2]).read_text()


def parse_then_swap(path: Path):  # the checkout holds other bytes while parsed, the PR's bytes once hashed
    path.write_text(other)
    plan = parse(path)
    path.write_text(approved)
    return plan


tasks.plan.read_plan = parse_then_swap
sys.exit(run("apply", sys.argv[3:]))
"""


def test_a_checkout_swapped_to_the_prs_bytes_after_the_parse_is_refused(world: World) -> None:
    """Issue 25: the plan was parsed from disk (`scale web 9`) and the gate hashed the file again, by then the PR's
    approved `scale web 5`: the run applied 9. The gate now hashes the very bytes that were parsed."""
    approved = world.plan_text.replace("replicas: 4", "replicas: 5")
    world.write_plan(approved)
    (world.root / "approved.yaml").write_text(approved)
    (world.root / "other.yaml").write_text(approved.replace("replicas: 5", "replicas: 9"))
    (world.root / "swap.py").write_text(SWAP)
    world.label("execute-plan")
    world.kube.clear_requests()
    result = subprocess.run([sys.executable, "swap.py", "approved.yaml", "other.yaml", f"--plan={PLAN_PATH}",
                             "--execute",
                             f"--pr={world.pr}"], cwd=world.root, env=world.env, capture_output=True, text=True,
                            timeout=240)
    assert world.plan.read_text() == approved, "the hook swapped the checkout"
    assert_refused(world, result, "the plan file here (blob ", whole=False)


def test_a_plan_the_pr_does_not_change_is_refused(world: World) -> None:
    """Issue 25: any plan present at the PR's head ran under its label; only a plan the PR changes runs now."""
    other = f"{PLAN_PATH.rsplit('/', 2)[0]}/frozen/plan.yaml"
    text = world.plan_text.replace("target: prod", "target: frozen")
    main = world.github.repo(REPO).branches["main"]
    world.github.set_branch(REPO, "main", world.github.make_commit(main, {other: text}, "frozen plan", "alice"))
    world.github.push_commit(REPO, world.pr, {other: text})  # at the head too, with the base's bytes: unchanged
    (world.root / other).parent.mkdir(parents=True)
    (world.root / other).write_text(text)
    world.label("execute-plan")
    world.kube.clear_requests()
    result = world.cli("apply", "--execute", f"--pr={world.pr}", f"--plan={other}")
    assert_refused(world, result, f"plan file {other} is not among the files PR #{world.pr} changes: a label runs "
                                  "only its own PR's plan")


def test_a_pr_into_another_branch_is_refused(world: World) -> None:
    world.github.set_branch(REPO, "release-x", world.github.repo(REPO).branches["main"])
    world.github.pull(REPO, world.pr).base_ref = "release-x"
    world.label("execute-plan")
    assert_refused(world, execute(world), f"PR #{world.pr} merges into 'release-x', not a branch this worker "
                                          "executes for ('main'; INFRA_BASE_BRANCHES adds others)")


def test_a_retarget_after_the_label_is_refused_like_a_push(world: World) -> None:
    """Issue 25: labeled into main, then retargeted (PATCH pulls/N) to release-x, which this worker also executes
    for: the label was given for main, so the run refuses as it does after a push."""
    import httpx

    world.github.set_branch(REPO, "release-x", world.github.repo(REPO).branches["main"])
    world.label("execute-plan")
    edited = httpx.patch(f"{world.github.url}/repos/{REPO}/pulls/{world.pr}", json={"base": "release-x"},
                         headers={"Authorization": f"token {world.github.token_for('walt')}"}, timeout=10)
    assert edited.status_code == 200 and edited.json()["base"]["ref"] == "release-x"
    world.kube.clear_requests()
    result = world.cli("apply", "--execute", f"--pr={world.pr}", INFRA_BASE_BRANCHES="release-x")
    assert_refused(world, result, f"PR #{world.pr} changed after label 'execute-plan' was added (its base branch "
                                  "was changed); add the label again to run the new head")


CLAIMED_ELSEWHERE = """\
import os, sys
import httpx
import tasks.gate
from cli.main import run

claim, number, sha = tasks.gate.claim_trigger_label, sys.argv[1], sys.argv[2]


def another_run_claims_first(settings, requirement):  # two runs passed their rechecks together: the other won
    api, repo = os.environ["GITHUB_API_URL"], f"{os.environ['GH_OWNER']}/{os.environ['GH_REPO']}"
    auth = {"Authorization": f"token {os.environ['GITHUB_TOKEN']}"}
    httpx.post(f"{api}/repos/{repo}/statuses/{sha}", headers=auth, json={
        "state": "pending", "context": "infra/apply", "description": "claimed by run 0c0ffee (label 'execute-plan')"})
    httpx.delete(f"{api}/repos/{repo}/issues/{number}/labels/execute-plan", headers=auth).raise_for_status()
    return claim(settings, requirement)


tasks.gate.claim_trigger_label = another_run_claims_first
sys.exit(run("apply", sys.argv[3:]))
"""


def test_one_label_one_run_a_second_claim_is_refused(world: World) -> None:
    """Issue 25: two runs on one labeled PR both ran; the label is now claimed (removed) before the first change,
    and a run whose removal finds it already gone refuses, naming the run that claimed it."""
    world.label("execute-plan")
    (world.root / "claimed.py").write_text(CLAIMED_ELSEWHERE)
    world.kube.clear_requests()
    result = subprocess.run([sys.executable, "claimed.py", str(world.pr), world.github.head_sha(REPO, world.pr),
                             f"--plan={PLAN_PATH}", "--execute", f"--pr={world.pr}"], cwd=world.root,
                            env=world.env, capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    assert result.stdout.splitlines()[-2:] == ["Refusing to execute: label 'execute-plan' already claimed by run "
                                               "0c0ffee.", "skipped"], output
    assert "Traceback" not in output
    changes = [r for r in world.kube.requests() if r.get("method") in MUTATING and "/leases" not in r["path"]]
    assert changes == [] and world.replicas("web") == 2, "only the lock was taken and given back"
    assert "execute-plan" not in world.github.labels_of(REPO, world.pr), "the winner's claim stands"


def test_the_label_is_claimed_before_the_first_change(world: World) -> None:
    world.label("execute-plan")
    world.kube.clear_requests()
    result = execute(world)
    assert result.stdout.splitlines()[-1] == "succeeded", result.stdout + result.stderr
    [claimed] = world.github.requests("DELETE", f"/issues/{world.pr}/labels/execute-plan$")
    first_change = min(r["time"] for r in world.kube.requests() if r["method"] in MUTATING
                       and "/leases" not in r["path"] and "/configmaps" not in r["path"])
    assert claimed.at < first_change, [(r["method"], r["path"], r["time"]) for r in world.kube.requests()]
    assert "execute-plan" not in world.github.labels_of(REPO, world.pr)


def test_a_run_that_claimed_the_label_and_changed_nothing_puts_it_back(world: World) -> None:
    world.label("execute-plan")
    world.kube.faults.add(method="PATCH", path_regex="/deployments/", status=403, count=50)  # the stamp fails
    result = execute(world)
    assert result.stdout.splitlines()[-1] == "failed", result.stdout + result.stderr
    assert world.github.requests("DELETE", f"/issues/{world.pr}/labels/execute-plan$"), "it was claimed"
    assert "execute-plan" in world.github.labels_of(REPO, world.pr), "and put back: nothing was changed"
    assert world.replicas("web") == 2


def test_a_plan_naming_another_context_is_refused_unless_allow_listed(world: World) -> None:
    """Issue 25: `context:` switched the run to another cluster of the worker's kubeconfig. Only the current
    context (or those in INFRA_CONTEXTS) may be changed now."""
    import yaml

    config = yaml.safe_load(Path(world.env["KUBECONFIG"]).read_text())
    other = dict(config["contexts"][0], name="prod-other")
    config["contexts"].append(other)
    path = world.root / "two-clusters.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    world.env["KUBECONFIG"] = str(path)
    world.write_plan(world.plan_text.replace("target: prod", "target: prod\ncontext: prod-other"))
    for flow in ("apply", "rollback"):
        previewed = world.cli(flow)
        assert previewed.returncode == 0 and "note: executing would refuse: the plan's context 'prod-other' is not " \
            "one this worker may change (allowed: 'sandbox'; set INFRA_CONTEXTS)" in previewed.stdout.splitlines(), \
            previewed.stdout + previewed.stderr
    world.label("execute-plan")
    assert_refused(world, execute(world), "the plan's context 'prod-other' is not one this worker may change "
                                          "(allowed: 'sandbox'; set INFRA_CONTEXTS)")
    world.env["INFRA_CONTEXTS"] = "sandbox,prod-other"
    allowed = execute(world)
    assert allowed.stdout.splitlines()[-1] == "succeeded", allowed.stdout + allowed.stderr
