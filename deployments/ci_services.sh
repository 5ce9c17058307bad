#!/usr/bin/env bash
# System packages the deployment suite (tests/deploy) needs beyond the Python venv. Run as root from .ci/run,
# before pytest:   bash deployments/ci_services.sh
#
# - chromium: the real-browser check of the Prefect UI (Debian package `chromium`, run headless).
# - PostgreSQL 15 server binaries (/usr/lib/postgresql/15/bin: initdb, postgres, pg_isready, createdb): the
#   Prefect server's database. The base image already has them; installed only when missing.
# - runuser (util-linux, always present) starts PostgreSQL as the `postgres` user, which the PostgreSQL package
#   creates; created here if missing.
# Idempotent: does nothing (no apt-get update) when everything is present.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "ci_services: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

if ! id postgres >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
fi

chromium --version 2>/dev/null | head -1 || true
/usr/lib/postgresql/15/bin/postgres --version
