"""Create the work pools and global concurrency limits the deployments need, idempotently.

    python -m deployments.work_pools                 # targets read from prefect.yaml's work pools
    python -m deployments.work_pools prod staging    # or named explicitly

For each target: a ``process`` work pool ``infra-<target>`` (its worker runs next to that cluster, with its
kubeconfig) and a global concurrency limit ``infra-target-<target>`` with limit 1 (a Prefect-side per-target
slot that apply and rollback occupy while they hold the target; the flows' cross-machine lock is the Kubernetes
Lease, this limit shows and pauses a target's runs from the UI: set to 0, new runs wait). Existing pools and
limits are left as they are (a limit whose value differs is set back to 1). Needs ``PREFECT_API_URL`` (and
``PREFECT_API_KEY`` on Prefect Cloud). Running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

POOL_PREFIX = "infra-"
LIMIT_PREFIX = "infra-target-"
PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"
TARGET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def pool_name(target: str) -> str:
    return f"{POOL_PREFIX}{target}"


def limit_name(target: str) -> str:
    return f"{LIMIT_PREFIX}{target}"


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


def ensure(targets: Iterable[str]) -> list[str]:
    """Create what is missing; returns one line per pool and limit saying what happened."""
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
            limit = limit_name(target)
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
    args = parser.parse_args(argv)
    if not os.environ.get("PREFECT_API_URL"):
        print("error: set PREFECT_API_URL to the Prefect server", file=sys.stderr)
        return 2
    targets = args.targets or targets_from_prefect_yaml(args.prefect_yaml)
    if not targets:
        print("error: no targets given and none found in prefect.yaml", file=sys.stderr)
        return 2
    try:
        for line in ensure(targets):
            print(line)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
