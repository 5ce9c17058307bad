#!/usr/bin/env bash
# Set up a fresh machine: a virtualenv with the project and its test tools, plus the Debian packages the
# distribution tests use (PostgreSQL for the Prefect server, Chromium for the UI check). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

missing=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v kubectl >/dev/null 2>&1 || echo "warning: kubectl is not on PATH; the sandbox tests need the real binary" >&2
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: missing Debian packages (${missing[*]}); install them as root for the distribution tests" >&2
  fi
fi
