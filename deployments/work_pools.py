"""Create the work pools and global concurrency limits the deployments need, idempotently.

    python -m deployments.work_pools                 # targets read from prefect.yaml's work pools
    python -m deployments.work_pools prod staging    # or named explicitly
    python -m deployments.work_pools --lock prod-eu/shop    # limits: CONTEXT/NAMESPACE (default: the plans')

For each target: a ``process`` work pool ``infra-<target>`` (its worker runs next to that cluster, with its
kubeconfig). For each cluster and namespace the plans change (each plan's ``context``, or the kubeconfig's
current context, and its ``namespace``; or as given with ``--lock``): a global concurrency limit
``infra-lock-<context>.<namespace>`` with limit 1, which apply and rollback occupy while they change that
namespace (the flows' cross-machine lock is the Kubernetes Lease; this limit shows and pauses those runs from the
UI: set to 0, new runs wait up to their lock timeout). Existing pools and limits are left as they are (a limit
whose value differs is set back to 1). Needs ``PREFECT_API_URL`` (and ``PREFECT_API_KEY`` on Prefect Cloud).
Running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from core.conventions import DEFAULT_PLANS_DIR, PLAN_FILE, lock_limit_name
from core.errors import InputError

POOL_PREFIX = "infra-"
PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"
TARGET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def pool_name(target: str) -> str:
    return f"{POOL_PREFIX}{target}"


def locks_from_plans(plans_dir: Path) -> list[tuple[str, str]]:
    """(context, namespace) of every plan under `plans_dir`: what the flows lock when they run it."""
    from core.plan import load_plan
    from integrations.kubeconfig import cluster_of

    found: list[tuple[str, str]] = []
    for path in sorted(plans_dir.glob(f"*/{PLAN_FILE}")):
        plan = load_plan(path)
        lock = (cluster_of(plan.context), plan.namespace)
        if lock not in found:
            found.append(lock)
    return found


def parse_lock(text: str) -> tuple[str, str]:
    """`CONTEXT/NAMESPACE`; the namespace is after the last `/` (a context may hold one: `arn:...:cluster/x`)."""
    context, slash, namespace = text.rpartition("/")
    if not slash or not context or not namespace:
        raise ValueError(f"invalid lock {text!r} (want CONTEXT/NAMESPACE)")
    return context, namespace


def targets_from_prefect_yaml(path: Path = PREFECT_YAML) -> list[str]:
    """Targets of every ``infra-<target>`` work pool the deployments in prefect.yaml name."""
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    found: list[str] = []
    for deployment in data.get("deployments") or []:
        name = ((deployment or {}).get("work_pool") or {}).get("name") or ""
        if name.startswith(POOL_PREFIX) and name[len(POOL_PREFIX) :] not in found:
            found.append(name[len(POOL_PREFIX) :])
    return found


def ensure(targets: Iterable[str], locks: Iterable[tuple[str, str]] = ()) -> list[str]:
    """Create what is missing: a pool per target, a limit per (context, namespace); returns one line per pool and
    limit saying what happened."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
        WorkPoolCreate,
    )
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    template: dict[str, Any] = ProcessWorker.get_default_base_job_template()
    lines: list[str] = []
    with get_client(sync_client=True) as client:
        for target in targets:
            if not TARGET_RE.match(target):
                raise ValueError(f"invalid target name {target!r} (want [a-z0-9][a-z0-9-]*)")
            pool = pool_name(target)
            try:
                client.create_work_pool(
                    WorkPoolCreate(
                        name=pool,
                        type="process",
                        base_job_template=template,
                        description=f"Runs infra-scale/apply/rollback for target {target}; "
                        "its worker runs next to that cluster with its kubeconfig.",
                    )
                )
                lines.append(f"work pool {pool}: created")
            except ObjectAlreadyExists:
                lines.append(f"work pool {pool}: exists")
        for context, namespace in locks:
            limit = lock_limit_name(context, namespace)
            try:
                current = client.read_global_concurrency_limit_by_name(limit)
                if current.limit != 1:
                    client.update_global_concurrency_limit(limit, GlobalConcurrencyLimitUpdate(limit=1))
                    lines.append(f"concurrency limit {limit}: set to 1")
                else:
                    lines.append(f"concurrency limit {limit}: exists")
            except ObjectNotFound:
                try:
                    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=limit, limit=1))
                    lines.append(f"concurrency limit {limit}: created")
                except ObjectAlreadyExists:  # created concurrently by another run of this script
                    lines.append(f"concurrency limit {limit}: exists")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.work_pools", description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="*", help="targets (default: from prefect.yaml)")
    parser.add_argument("--prefect-yaml", type=Path, default=PREFECT_YAML)
    parser.add_argument("--lock", action="append", default=[], metavar="CONTEXT/NAMESPACE",
                        help="a concurrency limit to create (default: each plan's, see --plans)")
    parser.add_argument("--plans", type=Path, default=Path(DEFAULT_PLANS_DIR),
                        help=f"the plans whose namespaces get a limit (default: {DEFAULT_PLANS_DIR})")
    args = parser.parse_args(argv)
    if not os.environ.get("PREFECT_API_URL"):
        print("error: set PREFECT_API_URL to the Prefect server", file=sys.stderr)
        return 2
    targets = args.targets or targets_from_prefect_yaml(args.prefect_yaml)
    if not targets:
        print("error: no targets given and none found in prefect.yaml", file=sys.stderr)
        return 2
    try:
        locks = [parse_lock(text) for text in args.lock] or locks_from_plans(args.plans)
        for line in ensure(targets, locks):
            print(line)
    except (ValueError, InputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
