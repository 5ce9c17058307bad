"""The ``infra-sandbox`` command (ready line, kubeconfig, seeding, SIGTERM) and the patch algorithms."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.kube.patch import PatchError, json_patch, merge_patch, strategic_merge
from tests.fixtures.kube import KUBECTL

SEED = """\
- apiVersion: v1
  kind: Namespace
  metadata: {name: shop}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: cart, namespace: shop}
  spec:
    replicas: 2
    selector: {matchLabels: {app: cart}}
    template:
      metadata: {labels: {app: cart}}
      spec:
        containers: [{name: app, image: "cart:1"}]
"""


def _start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.kube", "--port", "0", "--kubeconfig", str(tmp_path / "kc"), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    line = proc.stdout.readline() if ready else ""
    return proc, line


def test_cli_ready_seed_kubectl_and_sigterm(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED)
    start = time.monotonic()
    proc, line = _start(tmp_path, "--seed-file", str(seed), "--namespace", "shop")
    try:
        assert line.startswith("ready http://127.0.0.1:"), line
        assert time.monotonic() - start < 10
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin"),
            "KUBECONFIG": str(tmp_path / "kc"),
            "HOME": str(tmp_path),
            "KUBECACHEDIR": str(tmp_path / "cache"),
        }
        out = subprocess.run(
            [KUBECTL, "get", "deployment", "cart", "-o", "json"], env=env, capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, out.stderr
        dep = json.loads(out.stdout)
        assert dep["metadata"]["namespace"] == "shop" and dep["status"]["availableReplicas"] == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
    assert rc == 0


def test_cli_port_in_use_fails_cleanly(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "sandbox.kube", "--port", str(port), "--kubeconfig", str(tmp_path / "kc")],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=Path(__file__).resolve().parents[2],
        )
    assert proc.returncode == 1 and "cannot listen" in proc.stderr


def test_merge_patch_rfc7386() -> None:
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"a": None, "b": {"c": 9}, "e": [1]}) == {
        "b": {"c": 9, "d": 3},
        "e": [1],
    }
    assert merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}


def test_json_patch_rfc6902() -> None:
    doc = {"spec": {"list": [1, 2], "x": {"a/b": 1, "t~": 2}}}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/spec/list/-", "value": 3},
            {"op": "add", "path": "/spec/list/0", "value": 0},
            {"op": "replace", "path": "/spec/x/a~1b", "value": 5},
            {"op": "remove", "path": "/spec/x/t~0"},
            {"op": "copy", "from": "/spec/list", "path": "/spec/copy"},
            {"op": "move", "from": "/spec/copy", "path": "/moved"},
            {"op": "test", "path": "/moved/3", "value": 3},
        ],
    )
    assert out == {"spec": {"list": [0, 1, 2, 3], "x": {"a/b": 5}}, "moved": [0, 1, 2, 3]}
    assert doc["spec"]["list"] == [1, 2]
    for bad in (
        [{"op": "test", "path": "/spec/list/0", "value": 9}],
        [{"op": "replace", "path": "/nope", "value": 1}],
        [{"op": "remove", "path": "/spec/list/5"}],
    ):
        with pytest.raises(PatchError):
            json_patch(doc, bad)
    with pytest.raises(PatchError) as err:
        json_patch(doc, {"op": "add"})
    assert err.value.code == 400


def test_strategic_merge_containers_by_name_and_directives() -> None:
    live = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
                        {"name": "side", "image": "s:1"},
                    ],
                    "tolerations": [{"key": "a"}],
                }
            }
        }
    }
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
                    "containers": [
                        {"name": "app", "resources": {"limits": {"cpu": "1"}}, "env": [{"name": "Y", "value": "2"}]},
                        {"name": "side", "$patch": "delete"},
                        {"name": "new", "image": "n:1"},
                    ],
                    "tolerations": [{"key": "b"}],
                }
            }
        }
    }
    out = strategic_merge(live, patch)
    spec = out["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["app", "new"]
    assert spec["containers"][0]["image"] == "a:1"
    assert spec["containers"][0]["resources"] == {"limits": {"cpu": "1"}}
    assert spec["containers"][0]["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]
    assert spec["tolerations"] == [{"key": "b"}]
    assert "$setElementOrder" not in json.dumps(out)
    replaced = strategic_merge({"spec": {"a": 1, "b": 2}}, {"spec": {"$patch": "replace", "c": 3}})
    assert replaced == {"spec": {"c": 3}}
    assert strategic_merge(
        {"metadata": {"annotations": {"a": "1", "b": "2"}}}, {"metadata": {"annotations": {"a": None}}}
    ) == {"metadata": {"annotations": {"b": "2"}}}
    with pytest.raises(PatchError):
        strategic_merge(live, {"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}})


def test_cli_strict_cluster_flags(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED.replace('"cart:1"', '"bad/cart:1"'))
    proc, line = _start(tmp_path, "--seed-file", str(seed), "--broken-image", "^bad/", "--token", "t=wendy:ops")
    try:
        assert line.startswith("ready http://127.0.0.1:"), line
        env = {"PATH": os.environ.get("PATH", "/usr/bin"), "KUBECONFIG": str(tmp_path / "kc"), "HOME": str(tmp_path)}
        out = subprocess.run(
            [KUBECTL, "-n", "shop", "get", "deployment", "cart", "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["status"]["availableReplicas"] == 0, "pods of a broken image never get ready"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    bad, _ = _start(tmp_path, "--token", "no-user")
    assert bad.wait(timeout=10) == 1
    assert bad.stderr is not None and "expected TOKEN=USER" in bad.stderr.read()
