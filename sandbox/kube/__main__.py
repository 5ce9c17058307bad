"""``python -m sandbox.kube``: same as ``infra-sandbox``."""

from .cli import main

raise SystemExit(main())
