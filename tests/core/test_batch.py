"""core.batch: which steps share a kubectl call, what the call looks like, and what its output confirms."""

import json

from core.batch import BatchRun, batches, waves
from core.steps import Step


def step(number: int, obj: str, *args: str, stdin: str | None = None) -> Step:
    return Step(number, "action", None, obj, args, f"step {number}", stdin=stdin)


def scale(number: int, name: str, replicas: int = 3) -> Step:
    return step(number, f"deployment/{name}", "scale", f"deployment/{name}", f"--replicas={replicas}")


def hpa(number: int, name: str, verb: str = "apply") -> Step:
    manifest = {"kind": "HorizontalPodAutoscaler", "metadata": {"name": name}, "spec": {"maxReplicas": number}}
    return step(number, f"hpa/{name}", verb, "-f", "-", stdin=json.dumps(manifest))


def test_steps_that_differ_only_in_their_object_share_a_call_with_o_name() -> None:
    calls = batches([scale(1, "a"), scale(2, "b"), scale(3, "c", replicas=5), scale(4, "d")])

    assert [(call.args, [s.number for s in call.steps]) for call in calls] == [
        (("scale", "deployment/a", "deployment/b", "deployment/d", "--replicas=3", "-o", "name"), [1, 2, 4]),
        (("scale", "deployment/c", "--replicas=5"), [3]),
    ]


def test_a_step_alone_keeps_its_own_command() -> None:
    only = step(1, "deployment/a", "rollout", "undo", "deployment/a")

    assert [(call.args, call.stdin) for call in batches([only])] == [(only.args, None)]


def test_kubectl_style_names_after_a_kind_word_are_batched_too() -> None:
    calls = batches([step(1, "hpa/a", "delete", "hpa", "a"), step(2, "hpa/b", "delete", "hpa", "b")])

    assert [call.args for call in calls] == [("delete", "hpa", "a", "b", "-o", "name")]


def test_manifests_on_stdin_become_one_json_object_per_line() -> None:
    (call,) = batches([hpa(1, "a"), hpa(2, "b")])

    assert call.args == ("apply", "-f", "-", "-o", "name")
    assert [json.loads(line)["metadata"]["name"] for line in (call.stdin or "").splitlines()] == ["a", "b"]
    assert [c.args for c in batches([hpa(1, "a", "replace"), hpa(2, "b")])] == [("replace", "-f", "-"),
                                                                                 ("apply", "-f", "-")]


def test_what_never_shares_a_call() -> None:
    unbatchable = [
        step(1, "deployment/a", "rollout", "undo", "deployment/a"),
        step(2, "deployment/b", "rollout", "undo", "deployment/b"),
        step(3, "hpa/x", "apply", "-f", "hpa.yaml"),
        step(4, "hpa/y", "apply", "-f", "hpa.yaml"),
        step(5, None, "scale", "deployment/c", "--replicas=1"),
        step(6, None, "scale", "deployment/d", "--replicas=1"),
        step(7, "hpa/m", "apply", "-f", "-", stdin='{"a": 1}\n{"b": 2}'),
        step(8, "hpa/n", "apply", "-f", "-", stdin='{"a": 1}\n{"b": 2}'),
    ]

    assert [len(call.steps) for call in batches(unbatchable)] == [1] * 8


def test_an_object_appears_once_per_call_and_calls_are_bounded() -> None:
    same_name = [scale(1, "a"), step(2, "statefulset/a", "scale", "statefulset/a", "--replicas=3"), scale(3, "b")]

    assert [[s.number for s in call.steps] for call in batches(same_name)] == [[1], [2, 3]]
    assert [len(call.steps) for call in batches([scale(n, f"w{n}") for n in range(7)], max_batch=3)] == [3, 3, 1]


def test_calls_stay_within_kubectls_request_rate_limiter() -> None:
    resources = [step(n, f"deployment/w{n}", "set", "resources", f"deployment/w{n}", "--limits=cpu=1")
                 for n in range(7)]

    assert [len(call.steps) for call in batches([scale(n, f"w{n}") for n in range(23)])] == [10, 10, 3]
    assert [len(call.steps) for call in batches(resources)] == [5, 2]
    preconditioned = [step(n, f"deployment/w{n}", "scale", f"deployment/w{n}", "--replicas=1", "--current-replicas=2")
                      for n in range(7)]
    assert [len(call.steps) for call in batches(preconditioned)] == [5, 2]
    assert [len(call.steps) for call in batches([hpa(n, f"w{n}") for n in range(23)])] == [23]


def test_output_confirms_steps_by_object_name() -> None:
    (call,) = batches([scale(1, "a"), scale(2, "b"), scale(3, "c")])

    assert [s.number for s in call.confirmed("deployment.apps/a\ndeployment.apps/c\n")] == [1, 3]
    rollouts = batches([step(n, f"deployment/{x}", "rollout", "status", f"deployment/{x}", "--timeout=5s")
                        for n, x in ((1, "a"), (2, "b"))])[0]
    assert rollouts.args == ("rollout", "status", "deployment/a", "deployment/b", "--timeout=5s")
    assert [s.number for s in rollouts.confirmed('deployment "b" successfully rolled out\n')] == [2]


def test_a_failed_call_tried_the_first_unconfirmed_step_and_those_its_errors_name() -> None:
    (call,) = batches([scale(1, "a"), scale(2, "b"), scale(3, "c"), scale(4, "d")])
    left = list(call.steps[1:])

    assert call.tried(left, 'Error from server (NotFound): deployments.apps "d" not found') == {2, 4}
    assert call.tried(left, "") == set()


def test_waves_keep_each_groups_order() -> None:
    steps = [scale(1, "a"), scale(2, "b"), step(3, "deployment/a", "set", "resources", "deployment/a"),
             scale(4, "c"), hpa(5, "a")]

    assert [[s.number for s in wave] for wave in waves(steps, lambda s: (s.obj or "").rsplit("/")[-1])] == [
        [1, 2, 4], [3], [5]]


def test_a_calls_results_count_it_once_per_step_and_leave_the_unconfirmed() -> None:
    (call,) = batches([scale(1, "a"), scale(2, "b"), scale(3, "c")])
    ran = BatchRun(call, tuple(call.confirmed("deployment.apps/b\n")), 0.25, "error: boom", "error: boom")

    assert [(r.step.number, r.status, r.attempts, r.batch, r.duration_s) for r in ran.results()] == [
        (2, "succeeded", 1, 3, 0.25)]
    assert [step.number for step in ran.left] == [1, 3]
