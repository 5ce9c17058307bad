"""Benchmark the sandbox API server: median server handling time for GET and PATCH, and start-up time.

Targets (issue 3): GET and PATCH median under 2 ms, start-up under 1 s; issue 15: still under 2 ms with pods on
(every template PATCH starts a rolling update whose pods the controllers create, make ready and delete while
the requests go on). Handling time is what the server logs per request (request parsed -> response written),
so client and network overhead are excluded.

``--hpas N`` (issue 16) instead times N HPAs over N deployments applied, then deleted, by 4 ``kubectl apply -f -``
/ ``delete -f - --wait=false`` calls side by side, as a batched plan sends them; the HPA controller's syncs
share the store lock with these requests.

    .venv/bin/python bench/sandbox_bench.py [--requests N] [--hpas N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.execution_bench import REAL_KUBECTL, hpa_manifest  # noqa: E402
from sandbox.kube import SandboxServer  # noqa: E402

HPA_CALLS = 4


def hpa_waves(count: int) -> int:
    """Apply then delete ``count`` HPAs over ``count`` deployments in HPA_CALLS kubectl calls side by side."""
    server = SandboxServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = str(server.write_kubeconfig(Path(tmp) / "kubeconfig"))
            server.create_namespace("bench")
            for i in range(count):
                server.create_deployment("bench", f"app-{i:03d}", replicas=2, wait=False)
            server.settle(120)
            parts = [
                "---\n".join(hpa_manifest("bench", f"app-{i:03d}") for i in range(part, count, HPA_CALLS))
                for part in range(HPA_CALLS)
            ]
            for verb in (["apply", "-f", "-"], ["delete", "-f", "-", "--wait=false"]):
                t0 = time.perf_counter()
                procs = [
                    subprocess.Popen(
                        [REAL_KUBECTL, "--kubeconfig", kubeconfig, *verb],
                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                    )
                    for _ in parts
                ]
                errors = [proc.communicate(part)[1] for proc, part in zip(procs, parts, strict=True)]
                wall = time.perf_counter() - t0
                failed = [err for proc, err in zip(procs, errors, strict=True) if proc.returncode != 0]
                if failed:
                    print(f"{verb[0]} failed: {failed[0].strip()}")
                    return 1
                print(f"{verb[0]:<7} {count} HPAs in {HPA_CALLS} calls side by side: {wall:.2f} s")
            return 0
    finally:
        server.stop()


def _median_ms(server: SandboxServer, method: str, suffix: str) -> tuple[float, float, int]:
    times = [r["duration_s"] for r in server.requests() if r["method"] == method and r["path"].endswith(suffix)]
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.95)] * 1000, len(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="GETs and PATCHes each (default 500)")
    parser.add_argument("--hpas", type=int, default=0, help="time N HPAs applied and deleted instead")
    args = parser.parse_args()
    if args.hpas:
        return hpa_waves(args.hpas)

    t0 = time.perf_counter()
    server = SandboxServer().start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/version")
    conn.getresponse().read()
    in_process_start = time.perf_counter() - t0

    try:
        # ten deployments so lookups are not against an empty store
        for i in range(10):
            server.create_deployment("default", f"app{i}", replicas=2, wait=False)
        server.create_deployment("default", "web", replicas=2)
        path = "/apis/apps/v1/namespaces/default/deployments/web"
        for _ in range(args.requests):
            conn.request("GET", path)
            conn.getresponse().read()
        for i in range(args.requests):
            body = json.dumps(
                {
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [{"name": "app", "resources": {"limits": {"cpu": f"{100 + i % 7}m"}}}]
                            }
                        }
                    }
                }
            )
            conn.request("PATCH", path, body=body, headers={"Content-Type": "application/strategic-merge-patch+json"})
            conn.getresponse().read()
        for i in range(args.requests):
            conn.request(
                "PATCH",
                path + "/scale",
                body=json.dumps({"spec": {"replicas": 1 + i % 5}}),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            conn.getresponse().read()
        conn.close()
        server.settle()
        pods = len(server.list_objects("pods"))
        pod_writes = sum(1 for ev in server.store._history if ev.resource.key == "pods")
        get_med, get_p95, n_get = _median_ms(server, "GET", "/deployments/web")
        smp_med, smp_p95, n_smp = _median_ms(server, "PATCH", "/deployments/web")
        scl_med, scl_p95, n_scl = _median_ms(server, "PATCH", "/deployments/web/scale")
    finally:
        server.stop()

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox.kube", "--port", "0", "--kubeconfig", str(Path(tmp) / "kc")],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        cli_start = time.perf_counter() - t0
        proc.terminate()
        proc.wait(timeout=10)
    ok = line.startswith("ready")

    print(f"GET deployment            median {get_med:.3f} ms  p95 {get_p95:.3f} ms  (n={n_get}, target < 2 ms)")
    print(f"PATCH deployment (SMP)    median {smp_med:.3f} ms  p95 {smp_p95:.3f} ms  (n={n_smp}, target < 2 ms)")
    print(f"PATCH deployments/scale   median {scl_med:.3f} ms  p95 {scl_p95:.3f} ms  (n={n_scl}, target < 2 ms)")
    print(f"pods                      {pods} at the end, {pod_writes} pod writes during the run")
    print(f"start-up in-process       {in_process_start * 1000:.1f} ms (construct + first /version answered)")
    print(
        f"start-up infra-sandbox    {cli_start * 1000:.1f} ms (process spawn to 'ready' line{'' if ok else ', FAILED'})"
    )
    met = max(get_med, smp_med, scl_med) < 2.0 and cli_start < 1.0 and ok
    print("targets met" if met else "TARGETS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
