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


def identities(stdin: str | None) -> list[tuple[str, str, str]]:
    objects = [json.loads(line) for line in (stdin or "").splitlines()]
    return [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects]


def test_steps_that_differ_only_in_their_object_share_a_call_that_reads_them_from_stdin() -> None:
    calls = batches([scale(1, "a"), scale(2, "b"), scale(3, "c", replicas=5), scale(4, "d")])

    assert [(call.args, [s.number for s in call.steps]) for call in calls] == [
        (("patch", "-f", "-", "--subresource=scale", "--type=json",
          '-p=[{"op":"replace","path":"/spec/replicas","value":3}]', "-o", "name"), [1, 2, 4]),
        (("scale", "deployment/c", "--replicas=5"), [3]),
    ]
    assert identities(calls[0].stdin) == [("apps/v1", "Deployment", "a"), ("apps/v1", "Deployment", "b"),
                                          ("apps/v1", "Deployment", "d")]


def test_a_scale_precondition_becomes_a_json_patch_test() -> None:
    steps = [step(n, f"statefulset/{x}", "scale", f"statefulset/{x}", "--replicas=1", "--current-replicas=4")
             for n, x in ((1, "a"), (2, "b"))]

    (call,) = batches(steps)

    assert call.args[:5] == ("patch", "-f", "-", "--subresource=scale", "--type=json")
    assert json.loads(call.args[5].removeprefix("-p=")) == [{"op": "test", "path": "/spec/replicas", "value": 4},
                                                            {"op": "replace", "path": "/spec/replicas", "value": 1}]
    assert identities(call.stdin) == [("apps/v1", "StatefulSet", "a"), ("apps/v1", "StatefulSet", "b")]


def test_set_resources_and_patch_of_workloads_read_their_objects_from_stdin() -> None:
    resources = batches([step(n, f"deployment/{x}", "set", "resources", f"deployment/{x}", "-c=app",
                              "--limits=cpu=1") for n, x in ((1, "a"), (2, "b"))])
    patches = batches([step(n, f"deployment/{x}", "patch", f"deployment/{x}", "--type=json", "-p=[]")
                       for n, x in ((1, "a"), (2, "b"))])

    assert [(c.args, identities(c.stdin)) for c in resources + patches] == [
        (("set", "resources", "-f", "-", "-c=app", "--limits=cpu=1", "-o", "name"),
         [("apps/v1", "Deployment", "a"), ("apps/v1", "Deployment", "b")]),
        (("patch", "-f", "-", "--type=json", "-p=[]", "-o", "name"),
         [("apps/v1", "Deployment", "a"), ("apps/v1", "Deployment", "b")]),
    ]


def test_a_scale_with_other_options_stays_named() -> None:
    steps = [step(n, f"deployment/{x}", "scale", f"deployment/{x}", "--replicas=1", "--timeout=5s")
             for n, x in ((1, "a"), (2, "b"))]

    assert [(c.args, c.stdin) for c in batches(steps)] == [
        (("scale", "deployment/a", "deployment/b", "--replicas=1", "--timeout=5s", "-o", "name"), None)]


def test_a_step_alone_keeps_its_own_command() -> None:
    only = step(1, "deployment/a", "rollout", "undo", "deployment/a")

    assert [(call.args, call.stdin) for call in batches([only])] == [(only.args, None)]


def test_hpa_deletes_read_their_objects_from_stdin_and_do_not_wait() -> None:
    calls = batches([step(1, "hpa/a", "delete", "hpa", "a"), step(2, "hpa/b", "delete", "hpa", "b")])

    assert [(call.args, identities(call.stdin)) for call in calls] == [
        (("delete", "-f", "-", "--wait=false", "-o", "name"),
         [("autoscaling/v2", "HorizontalPodAutoscaler", "a"), ("autoscaling/v2", "HorizontalPodAutoscaler", "b")])]


def test_kubectl_style_names_after_a_kind_word_are_batched_too() -> None:
    calls = batches([step(1, "deployment/a", "delete", "deployment", "a"),
                     step(2, "deployment/b", "delete", "deployment", "b")])

    assert [call.args for call in calls] == [("delete", "deployment", "a", "b", "-o", "name")]


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
    assert [len(call.steps) for call in batches([scale(n, f"w{n}") for n in range(1000)])] == [250] * 4


def test_a_large_batch_is_spread_over_calls_that_run_side_by_side() -> None:
    assert [len(call.steps) for call in batches([scale(n, f"w{n}") for n in range(100)])] == [25] * 4
    assert [len(call.steps) for call in batches([hpa(n, f"w{n}") for n in range(30)])] == [10, 10, 10]
    assert [len(call.steps) for call in batches([scale(n, f"w{n}") for n in range(12)])] == [10, 2]
    assert [len(call.steps) for call in batches([scale(n, f"w{n}") for n in range(10)])] == [10]


def test_calls_naming_objects_stay_within_kubectls_request_rate_limiter() -> None:
    deletes = [step(n, f"deployment/w{n}", "delete", "deployment", f"w{n}") for n in range(7)]
    rollouts = [step(n, f"deployment/w{n}", "rollout", "status", f"deployment/w{n}") for n in range(23)]

    assert [len(call.steps) for call in batches(deletes)] == [5, 2]
    assert [len(call.steps) for call in batches(rollouts)] == [10, 10, 3]
    assert [len(call.steps) for call in batches([hpa(n, f"w{n}") for n in range(10)])] == [10]


def test_output_confirms_steps_by_object_name() -> None:
    (call,) = batches([scale(1, "a"), scale(2, "b"), scale(3, "c")])

    assert [s.number for s in call.confirmed("scale.autoscaling/a\nscale.autoscaling/c\n")] == [1, 3]
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
