#!/usr/bin/env bash
# Set up a fresh machine: a virtualenv with the project and its test tools, plus the Debian packages the
# distribution tests use (deployments/ci_services.sh: PostgreSQL for the Prefect server, Chromium). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

command -v kubectl >/dev/null 2>&1 || echo "warning: kubectl is not on PATH; the sandbox tests need the real binary" >&2
if [ "$(id -u)" -eq 0 ]; then
  bash deployments/ci_services.sh >/dev/null   # chromium, PostgreSQL 15 (only what is missing)
else
  echo "note: not root, so Debian packages for the distribution tests (chromium, postgresql-15) were not checked" >&2
fi
