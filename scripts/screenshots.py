"""The screenshots of docs/walkthrough.md, made from the demo so that they stay true.

    .venv/bin/python scripts/screenshots.py [--out docs/images]

Starts what `infra-demo` starts (the sandbox Kubernetes API server, the GitHub test server, a local Prefect
server, here with its UI), then takes the demo's pull request through a first review: `infra-plan --pr` (the
plan comment and `infra/plan`), `execute-plan` then `infra-apply --execute`, `rollback-plan` then
`infra-rollback --execute`, and a refused label by someone without write access. Each PR comment is rendered as
HTML (markdown-it, GitHub-like styles) and photographed by headless Chromium, and so are the Prefect UI's pages of
the apply run and the refused run. Writes PNG files and `comments.md` (each comment's markdown) to `--out`.
Nothing outside 127.0.0.1 and a temporary directory is touched.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from cli.demo import PLAN_PATH, seed_world  # noqa: E402 - the repository's own modules, from a script run by path
from core.conventions import LABELS, Flow  # noqa: E402
from integrations.command_help import CommandParser  # noqa: E402
from sandbox.harness import REPO, Sandboxes, launch_prefect, run_cli, wait_prefect  # noqa: E402

STYLE = """body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;line-height:1.5;
color:#1f2328;margin:0;padding:16px;background:#fff}.comment{border:1px solid #d0d7de;border-radius:6px;
max-width:960px}.head{background:#f6f8fa;border-bottom:1px solid #d0d7de;padding:8px 16px;color:#59636e}
.body{padding:8px 16px}table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #d0d7de;
padding:4px 10px}th{background:#f6f8fa}code{background:#eff1f3;padding:1px 4px;border-radius:4px;font-size:12px}
blockquote{color:#59636e;border-left:4px solid #d0d7de;margin:0;padding:0 12px}pre{background:#f6f8fa;padding:8px}"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("error: chromium is not installed (deployments/ci_services.sh installs it)")


def photograph(url: str, shot: Path, profile: Path, height: int = 1000) -> None:
    subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--hide-scrollbars", f"--window-size=1280,{height}",
                    "--virtual-time-budget=15000", f"--user-data-dir={profile}", f"--screenshot={shot}", url],
                   capture_output=True, timeout=120, check=True)


def rendered_comment(author: str, body: str) -> str:
    """A comment as GitHub shows it: hidden markers dropped, markdown as HTML, <details> left closed."""
    from markdown_it import MarkdownIt

    text = "\n".join(line for line in body.splitlines() if not line.startswith("<!--"))
    content = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    return (f"<!doctype html><meta charset=utf-8><style>{STYLE}</style><div class=comment>"
            f"<div class=head><b>{html.escape(author)}</b> commented</div><div class=body>{content}</div></div>")


def flow_runs(api_url: str) -> list[dict[str, Any]]:
    """The Prefect server's flow runs, newest first."""
    request = urllib.request.Request(f"{api_url}/flow_runs/filter", method="POST",
                                     data=json.dumps({"sort": "START_TIME_DESC", "limit": 50}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # the local server this script started
        runs: list[dict[str, Any]] = json.loads(response.read())
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(prog="scripts/screenshots.py", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", default=str(REPO_ROOT / "docs" / "images"), help="where the PNG files go")
    out = Path(parser.parse_args(argv).out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="infra-screenshots-") as temporary:
        tmp = Path(temporary)
        prefect = launch_prefect(tmp, ui=True)
        sandboxes = Sandboxes(tmp)
        try:
            _kube, checkout, pr = seed_world(sandboxes.start(), tmp)
            wait_prefect(prefect)
            env = sandboxes.env(prefect)
            plan = f"--plan={PLAN_PATH}"
            steps = [("plan", None, ["--pr", str(pr), plan]),
                     ("apply", LABELS[Flow.APPLY], ["--execute", f"--pr={pr}", plan]),
                     ("rollback", LABELS[Flow.ROLLBACK], ["--execute", f"--pr={pr}", plan])]
            for flow, label, args in steps:
                if label is not None:
                    sandboxes.label(pr, label)
                done = run_cli(flow, args, checkout, env)
                print(f"infra-{flow}: {done.stdout.splitlines()[-1] if done.stdout else done.stderr.strip()}")
            sandboxes.github.add_collaborator(REPO, "bob", "triage")
            sandboxes.github.add_label(REPO, pr, LABELS[Flow.APPLY], "bob")
            refused = run_cli("apply", ["--execute", f"--pr={pr}", plan], checkout, env)
            print(f"infra-apply labeled by bob: {refused.stdout.splitlines()[-2]}")
            comments = sandboxes.github.issue_comments(REPO, pr)
            markdown = []
            for number, comment in enumerate(comments, 1):
                page = tmp / f"comment-{number}.html"
                page.write_text(rendered_comment(comment.user, comment.body))
                photograph(page.as_uri(), out / f"comment-{number}.png", tmp / f"profile-c{number}", 1100)
                markdown.append(f"## comment {number} ({comment.user})\n\n{comment.body}\n")
            (out / "comments.md").write_text("\n".join(markdown))
            ui = prefect.api_url.removesuffix("/api")
            runs = flow_runs(prefect.api_url)  # newest first: the refused run, then the rollback, then the apply
            applied = next(run for run in runs
                           if run["name"] == f"apply prod PR#{pr}" and run["state_name"] != "Refused")
            photograph(f"{ui}/runs/flow-run/{applied['id']}", out / "prefect-apply.png", tmp / "profile-a")
            photograph(f"{ui}/runs/flow-run/{runs[0]['id']}", out / "prefect-refused.png", tmp / "profile-r")
        finally:
            prefect.stop()
            sandboxes.stop()
    print(f"screenshots in {out}: {', '.join(sorted(path.name for path in out.glob('*.png')))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
