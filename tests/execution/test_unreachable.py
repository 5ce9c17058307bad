"""A cluster that cannot be reached during --execute: one clear line, exit 1, a PR comment saying so, and the
trigger label left on so that a person can retry. No traceback, and no waiting out the whole lock timeout."""

import socket
import time
from pathlib import Path

from tests.execution.conftest import REPO, World


def dead_kubeconfig(world: World, tmp_path: Path) -> Path:
    """The sandbox's kubeconfig, pointed at a port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = world.kube.kubeconfig.read_text().replace(world.kube.url, f"http://127.0.0.1:{port}")
    assert text != world.kube.kubeconfig.read_text()
    dead = tmp_path / "dead-kubeconfig"
    dead.write_text(text)
    return dead


def test_an_unreachable_cluster_fails_in_one_line_and_keeps_the_label(world: World, tmp_path: Path,
                                                                      prefect_api: str) -> None:
    world.label("execute-plan")
    started = time.monotonic()

    result = world.cli("apply", "--execute", f"--pr={world.pr}", KUBECONFIG=str(dead_kubeconfig(world, tmp_path)),
                       INFRA_KUBECTL_TIMEOUT="5")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "failed"
    assert lines[-2].startswith("error: the cluster could not be reached ("), lines
    assert time.monotonic() - started < 120, "it must not wait out the 300 s lock timeout"
    assert "execute-plan" in world.github.labels_of(REPO, world.pr), "the label stays on for a retry"
    comments = [comment.body for comment in world.github.issue_comments(REPO, world.pr)]
    assert any("the cluster could not be reached" in body and "label was left on" in body for body in comments)
    assert world.replicas("web") == 2, "nothing changed"
    from tests.execution.test_visibility import latest_flow_run

    run = latest_flow_run()
    assert run.state.type.value == "FAILED" and run.state.message == lines[-2].removeprefix("error: "), \
        "Prefect says the cluster could not be reached, not '0 of 0 steps'"
