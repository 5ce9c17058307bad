"""``python -m deployments.webhook``: the same as ``infra-webhook``."""

from deployments.webhook.command import main

raise SystemExit(main())
