"""ResourceQuota, LimitRange and PodDisruptionBudget as a real API server serves them, driven by real kubectl:
validation, defaults, status, and the admission that refuses pods a quota or a LimitRange does not allow."""

from __future__ import annotations

import json

from tests.fixtures.kube import KubeSandbox, wait_until


def _web(sb: KubeSandbox, replicas: int, cpu: str = "500m", memory: str = "256Mi") -> None:
    sb.create_deployment(
        "default",
        "web",
        replicas=replicas,
        containers=[
            {
                "name": "app",
                "image": "nginx:1.25",
                "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": "1", "memory": "512Mi"}},
            }
        ],
    )


QUOTA = """apiVersion: v1
kind: ResourceQuota
metadata:
  name: compute
spec:
  hard:
    requests.cpu: "2"
    requests.memory: 1Gi
    limits.cpu: "8"
    pods: "10"
"""


def test_quota_is_discovered_created_and_reports_usage_of_the_running_pods(kube_sandbox: KubeSandbox) -> None:
    _web(kube_sandbox, 3)
    created = kube_sandbox.kubectl("create", "-f", "-", input=QUOTA)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "resourcequota/compute created"
    got = kube_sandbox.kubectl("get", "quota", "compute", "-o", "json")
    assert got.returncode == 0, got.stderr
    status = json.loads(got.stdout)["status"]
    assert status["hard"] == {"requests.cpu": "2", "requests.memory": "1Gi", "limits.cpu": "8", "pods": "10"}
    assert status["used"] == {"requests.cpu": "1500m", "requests.memory": "768Mi", "limits.cpu": "3", "pods": "3"}
    table = kube_sandbox.kubectl("get", "resourcequotas")
    assert table.stdout.split("\n")[0].split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert "pods: 3/10, requests.cpu: 1500m/2, requests.memory: 768Mi/1Gi" in table.stdout
    assert "limits.cpu: 3/8" in table.stdout
    assert kube_sandbox.kubectl("scale", "deployment/web", "--replicas=1").returncode == 0
    assert wait_until(lambda: (kube_sandbox.get("quota", "default", "compute") or {})["status"]["used"]["pods"] == "1")


def test_a_deployment_that_cannot_fit_is_refused_pods_and_does_not_roll_out(kube_sandbox: KubeSandbox) -> None:
    _web(kube_sandbox, 2)
    assert kube_sandbox.kubectl("create", "-f", "-", input=QUOTA).returncode == 0
    assert kube_sandbox.kubectl("scale", "deployment/web", "--replicas=6").returncode == 0
    kube_sandbox.server.fast_forward()
    replica_sets = kube_sandbox.list_objects("rs", "default")
    assert len(replica_sets) == 1
    failure = next(c for c in replica_sets[0]["status"]["conditions"] if c["type"] == "ReplicaFailure")
    assert failure["reason"] == "FailedCreate"
    assert failure["message"].endswith(
        "is forbidden: exceeded quota: compute, requested: requests.cpu=500m,requests.memory=256Mi, used: "
        "requests.cpu=2,requests.memory=1Gi, limited: requests.cpu=2,requests.memory=1Gi"
    )
    assert len(kube_sandbox.list_objects("pods", "default")) == 4
    status = kube_sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=1s")
    assert status.returncode == 1
    assert 'Waiting for deployment "web" rollout to finish: 4 out of 6 new replicas have been updated' in status.stdout
    # more room: the ReplicaSet tries again and the rollout completes
    more = '{"spec":{"hard":{"requests.cpu":"4","requests.memory":"2Gi"}}}'
    raised = kube_sandbox.kubectl("patch", "quota", "compute", "-p", more)
    assert raised.returncode == 0, raised.stderr
    kube_sandbox.server.fast_forward()
    assert len(kube_sandbox.list_objects("pods", "default")) == 6
    done = kube_sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=5s")
    assert done.returncode == 0, done.stdout + done.stderr
    rs = kube_sandbox.list_objects("rs", "default")[0]
    assert not any(c["type"] == "ReplicaFailure" for c in rs["status"].get("conditions") or [])


def test_a_pod_over_quota_is_refused_403_in_kube_apiservers_words(kube_sandbox: KubeSandbox) -> None:
    _web(kube_sandbox, 3)
    assert kube_sandbox.kubectl("create", "-f", "-", input=QUOTA).returncode == 0
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "big"},
        "spec": {
            "containers": [
                {"name": "app", "image": "nginx", "resources": {"requests": {"cpu": "1", "memory": "512Mi"},
                                                                 "limits": {"cpu": "1", "memory": "512Mi"}}}
            ]
        },
    }
    out = kube_sandbox.kubectl("create", "-f", "-", input=json.dumps(pod))
    assert out.returncode == 1
    assert out.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "big" is forbidden: exceeded quota: '
        "compute, requested: requests.cpu=1,requests.memory=512Mi, used: requests.cpu=1500m,requests.memory=768Mi, "
        "limited: requests.cpu=2,requests.memory=1Gi"
    )
    del pod["spec"]["containers"][0]["resources"]["requests"]["memory"]  # type: ignore[index]
    missing = kube_sandbox.kubectl("create", "-f", "-", input=json.dumps(pod))
    assert 'pods "big" is forbidden: failed quota: compute: must specify requests.memory for: app' in missing.stderr


def test_bad_quota_values_are_400_and_bad_names_or_negatives_are_422(kube_sandbox: KubeSandbox) -> None:
    bad = kube_sandbox.kubectl("create", "quota", "q", "--hard=cpu=lots")
    assert bad.returncode == 1
    assert "quantities must match the regular expression" in bad.stderr
    wrong = QUOTA.replace('pods: "10"', 'pods: "-1"\n    foo: "1"')
    invalid = kube_sandbox.kubectl("create", "-f", "-", input=wrong)
    assert invalid.returncode == 1
    assert invalid.stderr.strip() == (
        'The ResourceQuota "compute" is invalid: \n* spec.hard[foo]: Invalid value: "foo": must be a standard '
        'resource for quota\n* spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0'
    )
    created = kube_sandbox.kubectl("create", "quota", "small", "--hard=requests.cpu=1,pods=2")
    assert created.returncode == 0, created.stderr


PDB = """apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 2
  selector:
    matchLabels:
      app: web
"""


def test_pdb_counts_healthy_pods_and_refuses_both_bounds(kube_sandbox: KubeSandbox) -> None:
    _web(kube_sandbox, 3)
    assert kube_sandbox.kubectl("create", "-f", "-", input=PDB).returncode == 0
    status = json.loads(kube_sandbox.kubectl("get", "pdb", "web", "-o", "json").stdout)["status"]
    assert (status["expectedPods"], status["currentHealthy"], status["desiredHealthy"]) == (3, 3, 2)
    assert status["disruptionsAllowed"] == 1
    table = kube_sandbox.kubectl("get", "pdb").stdout.split("\n")
    assert table[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
    assert table[1].split()[:4] == ["web", "2", "N/A", "1"]
    both = kube_sandbox.kubectl("create", "-f", "-", input=PDB.replace("web\n", "both\n", 1) + "  maxUnavailable: 1\n")
    assert both.returncode == 1
    assert 'The PodDisruptionBudget "both" is invalid: spec: Invalid value: ' in both.stderr
    assert "minAvailable and maxUnavailable cannot be both set" in both.stderr
    over = kube_sandbox.kubectl("create", "pdb", "over", "--selector=app=web", "--min-available=150%")
    assert 'spec.minAvailable: Invalid value: "150%": must not be greater than 100%' in over.stderr
    assert kube_sandbox.kubectl("scale", "deployment/web", "--replicas=2").returncode == 0
    kube_sandbox.server.fast_forward()
    pdb = kube_sandbox.get("pdb", "default", "web")
    assert pdb is not None and pdb["status"]["disruptionsAllowed"] == 0


LIMITS = """apiVersion: v1
kind: LimitRange
metadata:
  name: limits
spec:
  limits:
  - type: Container
    max:
      cpu: "1"
    min:
      cpu: 100m
    maxLimitRequestRatio:
      cpu: "4"
"""


def test_limit_range_defaults_and_refuses_containers_outside_it(kube_sandbox: KubeSandbox) -> None:
    assert kube_sandbox.kubectl("create", "-f", "-", input=LIMITS).returncode == 0
    item = json.loads(kube_sandbox.kubectl("get", "limits", "limits", "-o", "json").stdout)["spec"]["limits"][0]
    assert item["default"] == {"cpu": "1"}
    assert item["defaultRequest"] == {"cpu": "1"}
    run = kube_sandbox.kubectl("run", "plain", "--image=nginx")
    assert run.returncode == 0, run.stderr
    plain = kube_sandbox.get("pod", "default", "plain")
    assert plain is not None
    assert plain["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "huge"},
        "spec": {"containers": [{"name": "app", "image": "nginx", "resources": {"limits": {"cpu": "2"}}}]},
    }
    out = kube_sandbox.kubectl("create", "-f", "-", input=json.dumps(pod))
    assert out.returncode == 1
    assert out.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "huge" is forbidden: maximum cpu usage '
        "per Container is 1, but limit is 2"
    )
    wrong = LIMITS.replace("min:\n      cpu: 100m", 'min:\n      cpu: "2"')
    bad = kube_sandbox.kubectl("create", "-f", "-", input=wrong)
    assert bad.returncode == 1
    assert 'spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1' in bad.stderr


def test_limit_range_reports_every_violated_constraint_in_kube_apiservers_words(kube_sandbox: KubeSandbox) -> None:
    assert kube_sandbox.kubectl("create", "-f", "-", input=LIMITS.replace('cpu: "1"', "cpu: 1000m")).returncode == 0
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "skewed"},
        "spec": {"containers": [{"name": "app", "image": "nginx",
                                 "resources": {"requests": {"cpu": "50m"}, "limits": {"cpu": "1"}}}]},
    }
    out = kube_sandbox.kubectl("create", "-f", "-", input=json.dumps(pod))
    assert out.returncode == 1
    assert out.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "skewed" is forbidden: [minimum cpu usage '
        "per Container is 100m, but request is 50m, cpu max limit to request ratio per Container is 4, but provided "
        "ratio is 20.000000]"
    )
