"""The plan choice of the GitHub Actions fallback (.github/workflows/infra-label.yml), made as the webhook bridge
makes it: from the files the PR changes, never from its head branch's name, which the PR's author chooses.

``python -m deployments.actions OWNER/REPO`` reads the PR's changed paths as GitHub lists them, one JSON array of
paths per line (a ``pulls/N/files`` page through ``jq -c '[.[].filename]'``: a path holding a newline stays one
path), and prints ``<target> <plan path>`` for each plan among them (``Routes.plans``, the bridge's convention
for a repository without a routes file), or the reason there is none on stderr. Exit 0 either way; 2 for input
that is not such a listing.

The workflow runs it from the base branch's own code (the commit its workflow file comes from), with the pinned
Prefect client's Python: it imports nothing beyond Prefect's own dependencies.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

from core.conventions import REPOSITORY_PATTERN
from deployments.webhook import Routes


def changed_paths(pages: Iterable[str]) -> list[str] | None:
    """The paths of every page (a JSON array of strings per non-empty line), or None when a line is not one."""
    paths: list[str] = []
    for line in pages:
        if not line.strip():
            continue
        try:
            page = json.loads(line)
        except ValueError:
            return None
        if not isinstance(page, list) or not all(isinstance(path, str) for path in page):
            return None
        paths += page
    return paths


def main(argv: Sequence[str] | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
         stderr: TextIO = sys.stderr) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not REPOSITORY_PATTERN.fullmatch(args[0]):
        print("usage: python -m deployments.actions OWNER/REPO < pages of the PR's changed paths", file=stderr)
        return 2
    paths = changed_paths(stdin)
    if paths is None:
        print("error: stdin: each line must be a JSON array of the PR's changed paths", file=stderr)
        return 2
    repository = args[0]
    chosen = Routes.for_repositories([repository]).plans(repository, paths)
    if isinstance(chosen, str):
        print(chosen, file=stderr)
        return 0
    for target, plan in chosen:
        print(f"{target} {plan}", file=stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
