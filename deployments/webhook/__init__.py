"""GitHub webhook bridge: a signed ``pull_request`` ``labeled`` delivery in, one Prefect event out.

Run it with ``infra-webhook --port 8787`` (see ``--help``). It serves on uvicorn + Starlette (ASGI): no thread per
connection, and every connection is bounded in time, size and number (see *Limits* below). Endpoints:

- ``POST /`` (also ``/webhook``, ``/github``): the GitHub webhook. Answers:
  ``401`` missing/wrong ``X-Hub-Signature-256`` (checked first, over the raw body, with ``hmac.compare_digest``);
  ``400`` signed but malformed; ``403 {"status": "refused", "reason": ...}`` for a repository this bridge does
  not serve; ``408`` body not received within the read timeout; ``413`` body over the size limit;
  ``202 {"status": "ignored", "reason": ...}`` for other events, other actions, other labels, unroutable PRs and
  replays; ``200 {"status": "emitted", ...}`` when the Prefect event was handed to Prefect; ``503`` when emitting
  failed (the replay entry is then released, so a manual redelivery from GitHub works) or when the connection
  limit is reached.
- ``GET /healthz``: ``200 {"ok": true, ...}`` (no secrets in it).

Repositories served (checked before anything else in the payload is used, and before any event is emitted):
``GH_OWNER``/``GH_REPO`` by default, or ``INFRA_REPOSITORIES="owner/a,owner/b"``, or the ``repos`` of a routes
file. The bridge does not start without one of them.

Routing (PR -> plans and their targets): the plans a PR's event starts are the plan files the PR changes, as
GitHub lists them (``pulls/N/files``, paginated), never a name the PR's author chooses (its head branch):

1. Convention: a changed file ``ops/plans/infra-scale/<target>/plan.yaml`` is a plan for target ``<target>``;
   a PR changing several plans starts one run per plan.
2. Optional routes file (``--routes FILE`` or ``INFRA_WEBHOOK_ROUTES``), YAML::

       repos:
         acme/infra:                     # only listed repositories are served when a routes file is given
           targets: [prod, staging]       # allowed targets (default: any valid name)
           plan: "ops/plans/infra-scale/{target}/plan.yaml"   # plan path template (default as above)

Target names must match ``[a-z0-9][a-z0-9-]{0,62}`` in full; anything else is ignored. Listing the PR's files
needs GitHub settings (``GITHUB_TOKEN`` or ``GITHUB_TOKEN_BLOCK``, ``GITHUB_API_URL``) in the bridge's
environment; without them every PR event is ignored (the worker's gate would refuse a plan its PR does not change
anyway), and a PR whose files GitHub does not list answers ``503`` (GitHub may redeliver).

The event (matched by the deployments' triggers in ``prefect.yaml``)::

    event:    github.pull_request.labeled
    resource: {"prefect.resource.id": "github.pr.<owner>/<repo>/<number>", "github.label": <label>,
               "github.target": <target>, "github.repository": <owner/repo>}
    payload:  {"number", "repository", "plan", "target", "label", "sender", "head_sha", "head_ref", "delivery"}

Plan on PR: a PR changing plans that is ``opened``, ``synchronize``d (new commits) or ``reopened`` emits
``github.pull_request.plan`` per plan (same resource without ``github.label``; payload as above with ``action``
instead of ``label``), which starts ``infra-plan`` for its target.

``head_sha`` is the PR head the ``labeled`` event carried (``pull_request.head.sha``); the triggers pass it to the
flow run as its ``head_sha`` parameter, so the gate refuses a head that moved after the label was added.

Replays: ``X-GitHub-Delivery`` is not signed, so replay protection keys on SHA-256 of the signature and the signed
body: the same body re-sent under any delivery id is a replay. Digests are kept in a small SQLite file
(``--state`` / ``INFRA_WEBHOOK_STATE``, default ``~/.infra-orchestrator/webhook-deliveries.sqlite3``), newest
10 000 only, so replays are dropped across restarts with bounded storage. The Prefect event id derives from the
same digest, so Prefect too sees a re-sent body as the same event.

Limits (flag, env var, default): ``--read-timeout`` ``INFRA_WEBHOOK_READ_TIMEOUT`` 10 s for a request's head and
again for its body, and for an idle keep-alive connection (GitHub itself gives up after 10 s);
``--max-body-bytes`` ``INFRA_WEBHOOK_MAX_BODY_BYTES`` 5 MiB (at most GitHub's own 25 MiB cap; ``labeled``
payloads are tens of KiB); ``--max-connections`` ``INFRA_WEBHOOK_MAX_CONNECTIONS`` 100 open connections, beyond
which requests get ``503``.

Secret: ``GITHUB_WEBHOOK_SECRET`` or, when empty, the Prefect Secret block named by
``GITHUB_WEBHOOK_SECRET_BLOCK``. It is never logged or echoed. Prefect settings (``PREFECT_API_URL``,
``PREFECT_API_KEY``) come from the environment as for any Prefect client.

Modules, in the order a delivery meets them: ``command`` (the command line and configuration), ``server`` (the
Starlette app on uvicorn and its limits; ``uvicorn_adapter`` holds the request-head deadline, the one use of a
uvicorn internal), ``bridge`` (replay log and emission around the decision), ``events`` (the pure decision:
signature, repository, event filter, routing to plans), ``signature`` (HMAC and the replay log), ``routes``
(repositories served and their plan paths).
"""

from deployments.webhook.bridge import Bridge, Emitter, github_files, prefect_emitter, warm_up_prefect
from deployments.webhook.command import load_secret, main
from deployments.webhook.events import EVENT_NAME, PLAN_EVENT_NAME, Outcome, decide
from deployments.webhook.routes import ConfigError, RepoRoute, Routes
from deployments.webhook.server import Limits, create_app, read_body, server_config
from deployments.webhook.signature import ReplayLog, replay_key, signature_for, signature_ok

__all__ = [
    "EVENT_NAME",
    "PLAN_EVENT_NAME",
    "Bridge",
    "ConfigError",
    "Emitter",
    "Limits",
    "Outcome",
    "ReplayLog",
    "RepoRoute",
    "Routes",
    "create_app",
    "decide",
    "github_files",
    "load_secret",
    "main",
    "prefect_emitter",
    "read_body",
    "replay_key",
    "server_config",
    "signature_for",
    "signature_ok",
    "warm_up_prefect",
]
