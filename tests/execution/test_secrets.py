"""The GitHub token never reaches output, logs, records, artifacts or the PR (Atlantis CVE-2024-52009)."""

import asyncio
import json

from tests.execution.conftest import NAMESPACE, REPO, World
from tests.execution.test_scenarios import apply, rollback


async def everything_prefect_stored() -> str:
    """All artifacts, flow runs (with their parameters) and logs on the session's Prefect server, as text."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        artifacts = await client.read_artifacts()
        runs = await client.read_flow_runs()
        logs = await client.read_logs()
    return json.dumps([a.model_dump(mode="json") for a in artifacts] + [r.model_dump(mode="json") for r in runs]
                      + [entry.model_dump(mode="json") for entry in logs])


def test_the_token_appears_nowhere(world: World) -> None:
    token = world.env["GITHUB_TOKEN"]
    assert len(token) > 8
    world.kube.faults.add(method="PATCH", path_regex=r"/deployments/api$", status=404, count=1)  # an error path too
    outputs = [apply(world), rollback(world)]
    world.github.inject("GET", r"/pulls/\d+$", 401, times=1)  # and a GitHub failure
    outputs.append(rollback(world))

    texts = [result.stdout + result.stderr for result in outputs]
    texts.append((world.plan.with_name("plan.record.json")).read_text())
    texts += [json.dumps(item) for item in world.kube.list_objects("ConfigMap", NAMESPACE)]
    texts += [comment.body for comment in world.github.issue_comments(REPO, world.pr)]
    texts.append(asyncio.run(everything_prefect_stored()))

    assert "Refusing to execute" in outputs[2].stdout, "the 401 was reported"
    assert len(world.kube.list_objects("ConfigMap", NAMESPACE)) == 1, "the record is in the cluster"
    for text in texts:
        assert token not in text
