"""The GitHub token never reaches output, logs, records, artifacts or the PR (Atlantis CVE-2024-52009)."""

import asyncio
import json

from tests.execution.conftest import NAMESPACE, REPO, World
from tests.execution.test_scenarios import apply, rollback


async def everything_prefect_stored() -> str:
    """All artifacts, flow runs (with their parameters) and logs on the session's Prefect server, as text.

    The API answers at most one page (200 rows) per read and the session's server holds every earlier test's
    runs, so each collection is read page by page: a first page alone would miss this test's own lines."""
    from prefect.client.orchestration import get_client

    page = 200
    rows: list[dict[str, object]] = []
    async with get_client() as client:
        for read in (client.read_artifacts, client.read_flow_runs, client.read_logs):
            offset = 0
            while True:
                batch = await read(limit=page, offset=offset)
                rows += [item.model_dump(mode="json") for item in batch]
                if len(batch) < page:
                    break
                offset += page
    return json.dumps(rows)


def test_the_token_appears_nowhere(world: World) -> None:
    token = world.env["GITHUB_TOKEN"]
    assert len(token) > 8
    world.kube.faults.add(method="PATCH", path_regex=r"/deployments/api$", command="kubectl set", status=404,
                          count=1)  # an error path too
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


def test_a_token_from_a_secret_block_is_masked_when_github_echoes_it(world: World) -> None:
    """The documented production setup: GITHUB_TOKEN_BLOCK names a Prefect Secret block. GitHub error bodies that
    echo the token (a refused read, a failed comment POST) reach stdout, the log table and the artifacts masked."""
    from prefect.blocks.system import Secret

    token = world.env.pop("GITHUB_TOKEN")
    Secret(value=token).save("infra-github-token", overwrite=True)
    world.env["GITHUB_TOKEN_BLOCK"] = "infra-github-token"
    world.github.schema_check_enabled = False  # the echoing error bodies are deliberately odd
    echo = {"message": f"Bad token {token} (ghp_{'Z' * 36})", "errors": []}

    world.github.inject("GET", r"/pulls/\d+$", 422, times=5, body=echo)
    refused = apply(world)
    world.github.clear_faults()
    world.github.inject("POST", r"/issues/\d+/comments$", 422, times=10, body=echo)
    executed = world.cli("apply", "--execute", f"--pr={world.pr}")

    assert refused.stdout.splitlines()[-2].startswith("Refusing to execute: GitHub answered 422"), refused.stdout
    assert "Bad token *** (***)" in refused.stdout
    assert executed.stdout.splitlines()[-1] == "succeeded", executed.stdout + executed.stderr
    assert "could not write the audit comment on PR" in executed.stdout and "Bad token ***" in executed.stdout
    stored = asyncio.run(everything_prefect_stored())
    assert "Bad token ***" in stored, "the CLI drained the warning to Prefect's log table, masked, before exiting"
    texts = [refused.stdout, refused.stderr, executed.stdout, executed.stderr, stored,
             world.plan.with_name("plan.record.json").read_text(),
             *(json.dumps(item) for item in world.kube.list_objects("ConfigMap", NAMESPACE)),
             *(comment.body for comment in world.github.issue_comments(REPO, world.pr))]
    for text in texts:
        assert token not in text
        assert "ghp_ZZZZ" not in text
