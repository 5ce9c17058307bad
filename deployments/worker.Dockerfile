# The image Kubernetes work pools run flow runs in (deployments/k8s-job-template.json): the project with its
# pinned dependencies, kubectl, and this repository's files as the checkout the pull step enters.
#
#   docker build -f deployments/worker.Dockerfile -t registry.internal/infra-orchestrator-worker:$(git rev-parse --short HEAD) .
#
# Build it from the deployed revision, tag it with that revision and set the pool's `image` variable to it:
# the code a run executes is then the code `prefect deploy` registered. Plans and desired-state files (ops/)
# come with it; the gate still compares every file a run reads with the PR's, so a stale image refuses
# rather than applies something else.
FROM python:3.11-slim-bookworm

# kubectl from the Kubernetes release bucket, checked against the release's published SHA-256.
ARG KUBECTL_VERSION=v1.32.4
# BuildKit sets TARGETARCH (amd64, arm64) for the platform being built; the legacy builder leaves it empty.
ARG TARGETARCH
RUN arch="${TARGETARCH:-amd64}" \
 && apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && curl -fsSLo /usr/local/bin/kubectl "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl" \
 && curl -fsSLo /tmp/kubectl.sha256 "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl.sha256" \
 && echo "$(cat /tmp/kubectl.sha256)  /usr/local/bin/kubectl" | sha256sum --check \
 && chmod 0755 /usr/local/bin/kubectl \
 && rm /tmp/kubectl.sha256 \
 && apt-get purge -y curl && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 \
    INFRA_ORCHESTRATOR_DIR=/opt/infra-orchestrator \
    HOME=/tmp PREFECT_HOME=/tmp/.prefect

WORKDIR /opt/infra-orchestrator
# What `pip install .` builds (pyproject.toml's packages), what the deployments name (prefect.yaml, flows/) and
# the plans the flows read (ops/).
COPY pyproject.toml README.md prefect.yaml ./
COPY core/ core/
COPY integrations/ integrations/
COPY cli/ cli/
COPY flows/ flows/
COPY tasks/ tasks/
COPY deployments/ deployments/
COPY sandbox/ sandbox/
COPY ops/ ops/
RUN pip install --no-cache-dir . && kubectl version --client

# A fixed non-root user: the pod's securityContext (runAsNonRoot) accepts only a numeric one. It owns ops/, where
# the flows mirror each apply record next to its plan (the record itself lives in the cluster).
RUN useradd --uid 10001 --no-create-home --home-dir /tmp infra && chown -R 10001 ops
USER 10001
