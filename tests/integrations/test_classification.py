"""One transient/permanent classification for every kubectl call, read from the HTTP exchanges themselves.

Real kubectl against the sandbox, which injects the fault: kubectl's message does not always name the reason
(a 500 on the GET of `scale` prints `error: no objects passed to scale ...`), so these tests are what shows the
classification holds for each verb, on the read before the write and on the write itself.
"""

import json
import pickle
import re

import pytest

from core.errors import PermanentError, TemporaryError
from integrations.kubectl import Exchange, Kubectl, KubectlError, KubectlResult, checked, exchanges, let_land, run
from tests.fixtures.kube import KubeSandbox

HPA = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
       "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2, "maxReplicas": 7}}
COMMANDS = {
    "scale": (["scale", "deployment/web", "--replicas=5"], None, r"/deployments/web"),
    "set resources": (["set", "resources", "deployment/web", "--limits=cpu=700m"], None, r"/deployments/web$"),
    "apply": (["apply", "-f", "-"], json.dumps(HPA), r"/horizontalpodautoscalers/web$"),
}


@pytest.fixture
def cluster(kube_sandbox: KubeSandbox) -> tuple[KubeSandbox, Kubectl]:
    kube_sandbox.create_namespace("shop")
    kube_sandbox.create_deployment("shop", "web", replicas=2)
    kube_sandbox.create_hpa("shop", "web", "web", 1, 4)
    return kube_sandbox, Kubectl(binary="/usr/bin/kubectl", env=kube_sandbox.env)


@pytest.mark.parametrize("method", ["GET", "PATCH"])
@pytest.mark.parametrize("status", [500, 503, 429])
@pytest.mark.parametrize("verb", list(COMMANDS))
def test_a_5xx_or_429_before_or_on_the_write_is_transient_and_did_not_land(
        cluster: tuple[KubeSandbox, Kubectl], verb: str, status: int, method: str) -> None:
    sandbox, kubectl = cluster
    args, stdin, path = COMMANDS[verb]
    rule = sandbox.faults.add(method=method, path_regex=path, status=status, count=1)

    result = run(kubectl, "shop", args, stdin=stdin)

    assert rule.fired == 1
    assert (result.ok, result.transient, result.maybe_landed) == (False, True, False), result.stderr
    with pytest.raises(TemporaryError):
        checked(result)


@pytest.mark.parametrize("verb", list(COMMANDS))
def test_a_dropped_write_is_transient_and_may_have_landed(cluster: tuple[KubeSandbox, Kubectl], verb: str) -> None:
    sandbox, kubectl = cluster
    args, stdin, path = COMMANDS[verb]
    rule = sandbox.faults.add(method="PATCH", path_regex=path, drop=True, count=1)

    result = run(kubectl, "shop", args, stdin=stdin)

    assert rule.fired == 1
    assert (result.ok, result.transient, result.maybe_landed) == (False, True, True), result.stderr
    with pytest.raises(KubectlError) as caught:
        checked(result)
    assert caught.value.maybe_landed and isinstance(caught.value, TemporaryError)


@pytest.mark.parametrize("verb", list(COMMANDS))
def test_a_dropped_read_is_retried_by_kubectl_itself(cluster: tuple[KubeSandbox, Kubectl], verb: str) -> None:
    """client-go re-sends a GET whose connection dropped; a write it never re-sends (above)."""
    sandbox, kubectl = cluster
    args, stdin, path = COMMANDS[verb]
    rule = sandbox.faults.add(method="GET", path_regex=path.rstrip("$") + "$", drop=True, count=1)

    result = run(kubectl, "shop", args, stdin=stdin)

    assert result.ok, result.stderr
    assert rule.fired == 1
    pattern = re.compile(rule.path_regex or "")
    gets = [r["status"] for r in sandbox.requests() if r["method"] == "GET" and pattern.search(r["path"])]
    assert gets == [0, 200]


def test_a_write_that_commits_after_the_timeout_may_have_landed(cluster: tuple[KubeSandbox, Kubectl]) -> None:
    sandbox, kubectl = cluster
    sandbox.faults.add(method="PATCH", path_regex=r"/deployments/web/scale$", latency_s=1.5, count=1)

    with pytest.raises(KubectlError) as caught:
        run(kubectl, "shop", ["scale", "deployment/web", "--replicas=6"], timeout_s=1.0)

    assert (caught.value.transient, caught.value.maybe_landed) == (True, True)
    let_land(caught.value.maybe_landed)  # what a read-back waits before it reads
    landed = [r["status"] for r in sandbox.requests() if r["method"] == "PATCH" and r["path"].endswith("/web/scale")]
    assert landed == [200], "by the time a read-back looks, the write the server held has landed (the grace)"




def test_a_read_that_times_out_did_not_write(cluster: tuple[KubeSandbox, Kubectl]) -> None:
    sandbox, kubectl = cluster
    sandbox.faults.add(method="GET", path_regex=r"/deployments/web$", latency_s=1.5, count=1)

    with pytest.raises(KubectlError) as caught:
        run(kubectl, "shop", ["get", "deployment", "web", "-o", "json"], timeout_s=1.0)

    assert (caught.value.transient, caught.value.maybe_landed) == (True, False)


def test_not_found_stays_permanent_and_the_verbose_log_stays_out_of_stderr(
        cluster: tuple[KubeSandbox, Kubectl]) -> None:
    _, kubectl = cluster

    result = run(kubectl, "shop", ["scale", "deployment/nope", "--replicas=1"])

    assert (result.ok, result.transient, result.maybe_landed) == (False, False, False)
    assert result.stderr.strip() == 'error: no objects passed to scale deployments.apps "nope" not found'
    assert ("GET", 404) in [(exchange.method, exchange.status) for exchange in result.requests]
    with pytest.raises(PermanentError):
        checked(result)


def test_a_failure_retried_successfully_by_client_go_does_not_count() -> None:
    url = "http://127.0.0.1:1/apis/apps/v1/namespaces/shop/deployments/web"
    retried = (Exchange("GET", url, None), Exchange("GET", url, 200), Exchange("PATCH", url, 404))
    lost = (Exchange("GET", url, 200), Exchange("PATCH", url, 504))
    result = KubectlResult(("x",), 1, "", "Error from server (NotFound): x", 0.0, retried)
    timed_out = KubectlResult(("x",), 1, "", "error: x", 0.0, lost)
    assert (result.transient, result.maybe_landed) == (False, False)
    assert (timed_out.transient, timed_out.maybe_landed) == (True, True)


def test_exchanges_are_read_from_the_v6_log_of_every_kubectl_minor() -> None:
    log = ("I1201 20:05:53.8   9351 round_trippers.go:560] GET http://h/api?timeout=32s 200 OK in 1 milliseconds\n"
           "I1201 20:05:53.8   9351 round_trippers.go:560] PATCH http://h/apis/x?fieldManager=kubectl-set  in 2 "
           "milliseconds\n")
    structured = ('I1201 20:31:46.5   22133 round_trippers.go:632] "Response" verb="PUT" url="http://h/apis/y" '
                  'status="503 Service Unavailable" milliseconds=2\n'
                  'I1201 20:31:46.5   22133 round_trippers.go:632] "Response" verb="GET" url="http://h/api" status="" '
                  'milliseconds=0\n')
    assert exchanges(log) == (Exchange("GET", "http://h/api?timeout=32s", 200),
                              Exchange("PATCH", "http://h/apis/x?fieldManager=kubectl-set", None))
    assert exchanges(structured) == (Exchange("PUT", "http://h/apis/y", 503), Exchange("GET", "http://h/api", None))


def test_kubectl_errors_are_typed_and_survive_pickling() -> None:
    transient = KubectlError("boom", transient=True, maybe_landed=True)
    transient.attempts = 3
    copy = pickle.loads(pickle.dumps(transient))
    assert isinstance(copy, TemporaryError) and isinstance(copy, KubectlError)
    assert (str(copy), copy.transient, copy.maybe_landed, copy.attempts) == ("boom", True, True, 3)
    assert isinstance(KubectlError("nope", transient=False), PermanentError)
