"""infra-plan through the CLI: real kubectl against the sandbox (reads and server-side dry runs only), and with
--pr the flow on the real Prefect server posting to the GitHub test server: one sticky comment, edited on a new
commit, and the `infra/plan` status on each head."""

import json

from tests.execution.conftest import NAMESPACE, PLAN, PLAN_PATH, REPO, World

WEB_REPLICAS = "change: deployment/web replicas: 2 → 4 (dry run passed)"
API_CPU = "change: deployment/api app requests.cpu: 100m → 300m (dry run passed)"
HPA_MIN = "change: hpa/web minReplicas: — → 3 (dry run passed)"


def summary_of(stdout: str) -> dict:  # type: ignore[type-arg]
    lines = stdout.splitlines()
    return dict(json.loads("\n".join(lines[lines.index("{"):-1])))


def writes(world: World) -> list[dict]:  # type: ignore[type-arg]
    return [r for r in world.kube.requests() if r["method"] in ("POST", "PUT", "PATCH", "DELETE")]


def plan_comments(world: World) -> list[tuple[int, str]]:
    comments = world.github.comments[REPO]
    return [(comment.id, comment.body) for comment in comments.values()
            if comment.body.startswith(f"<!-- infra-orchestrator:plan:{PLAN_PATH} -->")]


def test_the_plan_is_printed_live_to_planned_and_nothing_is_stored(world: World) -> None:
    before = {name: world.deployment(name) for name in ("web", "api")}

    result = world.cli("plan")

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert {WEB_REPLICAS, API_CPU, HPA_MIN, "change: deployment/api app limits.cpu: 200m → 600m (dry run passed)",
            "change: hpa/web maxReplicas: — → 8 (dry run passed)"} <= set(lines)
    assert not [line for line in lines if line.startswith("warning: hpa/web")], \
        "the plan's own HPA bounds (min 3, max 8) hold the planned 4: nothing to warn of"
    document = summary_of(result.stdout)
    assert [r["status"] for r in document["results"]] == ["succeeded"] * 3
    assert all(r["command"].endswith("--dry-run=server") for r in document["results"])
    assert lines[-1] == "succeeded"
    sent = writes(world)
    assert len(sent) == 3 and all("dryRun=All" in r["query"] for r in sent), sent
    assert {name: world.deployment(name) for name in ("web", "api")} == before
    assert world.hpa("web") is None
    assert world.github.count() == 0, "without --pr nothing is asked of GitHub"


def test_a_missing_object_and_drift_are_warned_and_fail_the_dry_run(world: World) -> None:
    world.plan.write_text(f"""\
namespace: {NAMESPACE}
actions:
  - {{type: scale_workload, name: web, replicas: 4, current: 3}}
  - {{type: scale_workload, name: gone, replicas: 2}}
""")
    result = world.cli("plan")

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "warning: deployment/gone does not exist in namespace shop" in lines
    assert "warning: drift since the plan was written: deployment/web replicas was 3 when the plan was written, " \
           "is 2 now" in lines
    gone = summary_of(result.stdout)["results"][1]
    assert gone["status"] == "failed" and "not found" in gone["error"]
    assert lines[-1] == "failed"


def test_the_pr_gets_one_sticky_comment_edited_on_a_new_commit_and_a_status_per_head(world: World) -> None:
    first_head = world.github.head_sha(REPO, world.pr)

    first = world.cli("plan", f"--pr={world.pr}")

    assert first.returncode == 0, first.stdout + first.stderr
    [(comment_id, body)] = plan_comments(world)
    assert "| `deployment/web` | replicas | 2 → **4** | passed |" in body
    assert "| `deployment/api` | app requests.cpu | 100m → **300m** | passed |" in body
    assert f"[PR #{world.pr}]({world.github.url}/{REPO}/pull/{world.pr})" in body
    assert "/runs/flow-run/" in body, "the comment links to the Prefect flow run"
    [status] = world.github.latest_statuses(REPO, first_head).values()
    assert (status.context, status.state) == ("infra/plan", "success")
    assert status.target_url is not None and "/runs/flow-run/" in status.target_url

    world.write_plan(PLAN.replace("replicas: 4", "replicas: 5"))
    second_head = world.github.head_sha(REPO, world.pr)
    second = world.cli("plan", f"--pr={world.pr}")

    assert second.returncode == 0, second.stdout + second.stderr
    [(edited_id, edited)] = plan_comments(world)
    assert edited_id == comment_id, "the same comment is edited, never a second one"
    newest, _, earlier = edited.partition("**Earlier runs**")
    assert "| `deployment/web` | replicas | 2 → **5** | passed |" in newest
    assert "2 → **4**" in earlier and "<details><summary>" in earlier, "the earlier run stays, collapsed"
    assert world.github.latest_statuses(REPO, second_head)["infra/plan"].state == "success"
    assert world.github.count("PATCH", r"/issues/comments/\d+$") == 1
    assert world.github.count("POST", r"/issues/\d+/comments$") == 1


def test_a_checkout_that_is_not_the_prs_head_fails_the_plan_status(world: World) -> None:
    world.plan.write_text(PLAN.replace("replicas: 4", "replicas: 9"))  # a local edit the PR does not carry

    result = world.cli("plan", f"--pr={world.pr}")

    assert result.returncode == 1, result.stdout + result.stderr
    assert any(line.startswith("error: the plan file") for line in result.stdout.splitlines()), result.stdout
    status = world.github.latest_statuses(REPO, world.github.head_sha(REPO, world.pr))["infra/plan"]
    assert status.state == "failure" and status.description is not None
    assert status.description.startswith("the plan file")


def test_apply_sets_infra_apply_pending_then_success_and_its_comment_shows_the_changes(world: World) -> None:
    head = world.github.head_sha(REPO, world.pr)
    world.label("execute-plan")

    result = world.cli("apply", "--execute", f"--pr={world.pr}")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "change: deployment/web replicas: 2 → 4 (succeeded, 1 attempt," in result.stdout
    states = [(s.context, s.state) for s in world.github.statuses_for(REPO, head)]
    assert states == [("infra/apply", "success"), ("infra/apply", "pending"), ("infra/apply", "pending")], \
        "newest first: the run's claim of the label, then its start"
    claim = world.github.statuses_for(REPO, head)[1].description or ""
    assert claim.startswith("claimed by run ") and claim.endswith("(label 'execute-plan')")
    [body] = [comment.body for comment in world.github.comments[REPO].values()
              if comment.body.startswith("<!-- infra-orchestrator:apply")]
    assert "| `deployment/web` | replicas | 2 → **4** | succeeded | 1 |" in body
    assert "/runs/flow-run/" in body
    assert f"[PR #{world.pr}]({world.env['GITHUB_API_URL']}/{REPO}/pull/{world.pr})" in body, "the summary links the PR"
