"""Rebuild the vendored OpenAPI subset from the npm package ``@octokit/openapi``.

Usage: ``python sandbox/github/openapi/regenerate.py [--version 23.0.2] [--from-tgz PATH]``

It runs ``npm pack @octokit/openapi@VERSION`` in a temporary directory, reads
``package/generated/api.github.com.json`` and writes ``api.github.com.subset.json`` next to this script with
only the operations listed in ``OPERATIONS`` and the components they reference (transitively). Response and
request examples are dropped (they are large and the validator does not need them). The package is MIT-licensed
(see NOTICE).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "api.github.com.subset.json"
DEFAULT_VERSION = "23.0.2"

# (path, method): everything PyGithub calls for infra-orchestrator, plus what infra-scale needs.
OPERATIONS: list[tuple[str, str]] = [
    ("/user", "get"),
    ("/rate_limit", "get"),
    ("/repos/{owner}/{repo}", "get"),
    ("/repos/{owner}/{repo}/pulls", "get"),
    ("/repos/{owner}/{repo}/pulls", "post"),
    ("/repos/{owner}/{repo}/pulls/{pull_number}", "get"),
    ("/repos/{owner}/{repo}/pulls/{pull_number}", "patch"),
    ("/repos/{owner}/{repo}/pulls/{pull_number}/reviews", "get"),
    ("/repos/{owner}/{repo}/issues/{issue_number}", "get"),
    ("/repos/{owner}/{repo}/issues/{issue_number}/events", "get"),
    ("/repos/{owner}/{repo}/issues/{issue_number}/timeline", "get"),
    ("/repos/{owner}/{repo}/issues/events/{event_id}", "get"),
    ("/repos/{owner}/{repo}/issues/{issue_number}/labels", "get"),
    ("/repos/{owner}/{repo}/issues/{issue_number}/labels", "post"),
    ("/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}", "delete"),
    ("/repos/{owner}/{repo}/issues/{issue_number}/comments", "get"),
    ("/repos/{owner}/{repo}/issues/{issue_number}/comments", "post"),
    ("/repos/{owner}/{repo}/issues/comments/{comment_id}", "get"),
    ("/repos/{owner}/{repo}/issues/comments/{comment_id}", "patch"),
    ("/repos/{owner}/{repo}/collaborators/{username}/permission", "get"),
    ("/repos/{owner}/{repo}/git/ref/{ref}", "get"),
    ("/repos/{owner}/{repo}/git/refs", "post"),
    ("/repos/{owner}/{repo}/git/trees/{tree_sha}", "get"),
    ("/repos/{owner}/{repo}/contents/{path}", "get"),
    ("/repos/{owner}/{repo}/contents/{path}", "put"),
    ("/repos/{owner}/{repo}/pulls/{pull_number}/files", "get"),
    ("/repos/{owner}/{repo}/statuses/{sha}", "post"),
    ("/repos/{owner}/{repo}/commits/{ref}/statuses", "get"),
    ("/repos/{owner}/{repo}/commits/{ref}/status", "get"),
]


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            out.add(ref)
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def _drop_examples(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _drop_examples(v) for k, v in node.items() if k not in ("examples", "example")}
    if isinstance(node, list):
        return [_drop_examples(v) for v in node]
    return node


def subset(spec: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, method in OPERATIONS:
        item = spec["paths"][path]
        target = paths.setdefault(path, {})
        target[method] = _drop_examples(item[method])
        if "parameters" in item:
            target["parameters"] = item["parameters"]
    components: dict[str, dict[str, Any]] = {}
    pending: set[str] = set()
    _refs(paths, pending)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, kind, name = ref.split("/", 3)
        value = _drop_examples(spec["components"][kind][name])
        components.setdefault(kind, {})[name] = value
        found: set[str] = set()
        _refs(value, found)
        pending |= found - seen
    # The gate checks labeled events against this exact schema (the list schema is a permissive oneOf).
    for extra in ("labeled-issue-event", "unlabeled-issue-event"):
        ref = f"#/components/schemas/{extra}"
        if ref not in seen:
            components.setdefault("schemas", {})[extra] = _drop_examples(spec["components"]["schemas"][extra])
    return {
        "openapi": spec["openapi"],
        "info": {
            **{k: spec["info"][k] for k in ("title", "version") if k in spec["info"]},
            "description": "Trimmed subset of @octokit/openapi generated/api.github.com.json "
            "(MIT, Octokit contributors); rebuilt by regenerate.py.",
        },
        "servers": spec.get("servers", []),
        "paths": dict(sorted(paths.items())),
        "components": {k: dict(sorted(v.items())) for k, v in sorted(components.items())},
    }


def fetch(version: str, workdir: Path) -> Path:
    subprocess.run(
        ["npm", "pack", f"@octokit/openapi@{version}", "--silent"], cwd=workdir, check=True,
        stdout=subprocess.DEVNULL,
    )
    tgz = next(workdir.glob("octokit-openapi-*.tgz"))
    return tgz


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=DEFAULT_VERSION)
    parser.add_argument("--from-tgz", type=Path, help="use an already downloaded npm tarball")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        tgz = args.from_tgz or fetch(args.version, workdir)
        with tarfile.open(tgz) as tar:
            member = tar.extractfile("package/generated/api.github.com.json")
            assert member is not None
            spec = json.load(member)
    result = subset(spec)
    OUTPUT.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size // 1024} KiB, {len(result['paths'])} paths)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
