"""Server-side dry runs as infra-plan sends them: validation and admission run, nothing is stored.

(apply and scale dry runs are covered in test_kubectl_commands.py and test_faults_and_http.py; these add the
strategic-merge PATCH of `set resources` and a dry run the server must reject.)
"""

from __future__ import annotations

from tests.fixtures.kube import KubeSandbox

BAD_HPA = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 5
  maxReplicas: 2
"""


def test_set_resources_dry_run_stores_nothing_and_cuts_no_revision(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", replicas=2)
    before = kube_sandbox.get("deployment", "default", "web")
    revisions = kube_sandbox.revisions("default", "web")
    out = kube_sandbox.kubectl("set", "resources", "deployment/web", "-c=app", "--requests=cpu=250m",
                               "--dry-run=server")
    assert out.returncode == 0, out.stderr
    assert "(server dry run)" in out.stdout
    kube_sandbox.settle()
    assert kube_sandbox.get("deployment", "default", "web") == before
    assert kube_sandbox.revisions("default", "web") == revisions
    patches = [r for r in kube_sandbox.requests() if r["method"] == "PATCH"]
    assert patches and all("dryRun=All" in r["query"] for r in patches)


def test_dry_run_is_validated_like_a_write(kube_sandbox: KubeSandbox) -> None:
    kube_sandbox.create_deployment("default", "web", replicas=2)
    path = kube_sandbox.write("bad-hpa.yaml", BAD_HPA)
    out = kube_sandbox.kubectl("apply", "--dry-run=server", "-f", str(path))
    assert out.returncode == 1
    assert "Invalid" in out.stderr and "minReplicas" in out.stderr, out.stderr
    assert kube_sandbox.get("hpa", "default", "web") is None
    missing = kube_sandbox.kubectl("scale", "deployment/nope", "--replicas=3", "--dry-run=server")
    assert missing.returncode == 1 and "not found" in missing.stderr, missing.stderr
