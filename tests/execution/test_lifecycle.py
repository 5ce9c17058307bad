"""Apply then roll back through the CLI: real kubectl, the sandbox cluster, the GitHub gate, a Prefect server."""

import json

from tests.execution.conftest import NAMESPACE, REPO, World


def summary_of(stdout: str) -> dict:  # type: ignore[type-arg]
    lines = stdout.splitlines()
    start = lines.index("{")
    end = len(lines) - 1 - lines[::-1].index("}")
    return json.loads("\n".join(lines[start:end + 1]))  # type: ignore[no-any-return]


def test_apply_then_rollback_restores_exactly(world: World) -> None:
    template_before = world.deployment("web")["spec"]["template"]
    revisions_before = world.kube.revisions(NAMESPACE, "web")
    world.label("execute-plan")

    applied = world.cli("apply", "--execute", f"--pr={world.pr}")

    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert applied.stdout.splitlines()[-1] == "succeeded"
    assert world.replicas("web") == 4
    assert world.resources("api") == {"requests": {"cpu": "300m", "memory": "128Mi"}, "limits": {"cpu": "600m"}}
    hpa = world.hpa("web")
    assert hpa is not None and hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] == 8
    assert "execute-plan" not in world.github.labels_of(REPO, world.pr), "one label, one run"
    comments = world.github.issue_comments(REPO, world.pr)
    assert len(comments) == 1 and "infra-apply" in comments[0].body

    world.label("rollback-plan")
    rolled = world.cli("rollback", "--execute", f"--pr={world.pr}")

    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert rolled.stdout.splitlines()[-1] == "succeeded"
    assert world.replicas("web") == 2
    assert world.resources("api") == {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m"}}
    assert world.hpa("web") is None, "the HPA the plan created is deleted"
    assert world.deployment("web")["spec"]["template"] == template_before, "scale-only rollback keeps the template"
    assert world.kube.revisions(NAMESPACE, "web") == revisions_before
    document = summary_of(rolled.stdout)
    assert document["executed"] is True
    assert [r["command"].split()[3] for r in document["results"] if r["type"] == "action"] == \
        ["delete", "patch", "scale"], "reverse order"
    assert len(world.github.issue_comments(REPO, world.pr)) == 2  # one per flow

    again = world.cli("rollback", "--execute", f"--pr={world.pr}", timeout=240)
    assert again.stdout.splitlines()[-2:] == ["Refusing to execute: PR missing label 'rollback-plan'.", "skipped"]
    world.label("rollback-plan")
    again = world.cli("rollback", "--execute", f"--pr={world.pr}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert any(line.startswith("note: this apply record was already rolled back at ") and
               line.endswith(": nothing to reverse") for line in again.stdout.splitlines()), again.stdout
    assert world.replicas("web") == 2
