"""The execution gate, as pure logic: facts about a pull request in, a decision with its reason out.

No network and no Prefect here: ``integrations/github.py`` gathers the facts, this module judges them.
Every field of ``PullRequestFacts`` is None-safe: None always means "no" (or "unknown"), and "unknown"
never lets anything through (fail closed).

Reasons are short sentences without a trailing period; callers print ``Refusing to execute: <reason>.``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

LABELS = {"apply": "execute-plan", "rollback": "rollback-plan"}
# Roles allowed to trigger an execution (GitHub's role_name; maintain and write map to legacy "write").
TRIGGER_ROLES = ("write", "maintain", "admin")


@dataclass(frozen=True)
class GateRequirement:
    flow: str  # "apply" or "rollback"
    pr: int
    plan_path: str  # repository-relative POSIX path of the plan file
    require_approval: bool = False
    repository: str | None = None  # "owner/name"; None: GH_OWNER/GH_REPO from the environment
    # Head SHA when the label was added, if the caller knows it (the `labeled` webhook payload carries
    # pull_request.head.sha). Closes the label-then-push window: a commit pushed after the label refuses.
    expected_head_sha: str | None = None


@dataclass(frozen=True)
class PullRequestFacts:
    """What GitHub said about the PR. Built by ``integrations.github.fetch_facts`` (or by tests)."""

    number: int
    is_open: bool | None = None
    merged: bool | None = None
    draft: bool | None = None
    # True only when the head branch lives in the base repository itself (not a fork, not a deleted fork).
    from_base_repo: bool | None = None
    head_repo: str | None = None  # full name, for messages
    labels: tuple[str, ...] | None = None
    head_sha: str | None = None
    # Newest `labeled` event for the flow's label: who made it, when, and that user's role in the repository.
    label_actor: str | None = None
    label_added_at: str | None = None
    label_actor_role: str | None = None  # admin, maintain, write, triage, read, none, or a custom role name
    label_actor_permission: str | None = None  # legacy base permission: admin, write, read, none
    # Blob SHA of the plan file at head_sha (None when the file does not exist there).
    plan_blob_sha: str | None = None
    # Logins whose latest review is APPROVED on head_sha and who have write access or more.
    approvals: tuple[str, ...] | None = None
    # Set when the facts could not be gathered (bad settings, GitHub error): always refuses.
    error: str | None = None


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    reason: str
    head_sha: str | None
    plan_blob_sha: str | None
    label_actor: str | None = None

    @property
    def message(self) -> str:
        """The line callers print when the gate refuses (or a short confirmation when it allows)."""
        return f"Refusing to execute: {self.reason}." if not self.allowed else f"Gate passed: {self.reason}."


def short(sha: str | None) -> str:
    return sha[:7] if sha else "unknown"


def trigger_role_ok(role: str | None, legacy_permission: str | None) -> bool:
    """write/maintain/admin by role name; a custom role counts when its legacy base permission is write or admin."""
    if role in TRIGGER_ROLES:
        return True
    if role in (None, "", "none", "read", "triage"):
        return False
    return legacy_permission in ("write", "admin")


def plan_path_problem(path: str) -> str | None:
    if not path or path.startswith("/") or "\\" in path:
        return f"plan path '{path}' must be relative to the repository root"
    norm = posixpath.normpath(path)
    if norm.startswith("..") or norm != path.removeprefix("./"):
        return f"plan path '{path}' must be a normalized path inside the repository"
    if "-->" in path or "\n" in path:
        return f"plan path '{path}' contains characters that are not allowed"
    return None


def _refuse(reason: str, facts: PullRequestFacts | None = None) -> GateDecision:
    return GateDecision(False, reason, facts.head_sha if facts else None,
                        facts.plan_blob_sha if facts else None, facts.label_actor if facts else None)


def evaluate_gate(facts: PullRequestFacts, requirement: GateRequirement) -> GateDecision:
    """All gate conditions, in the order a reader would check them; the first failing one is the reason."""
    label = LABELS.get(requirement.flow)
    if label is None:
        return _refuse(f"unknown flow '{requirement.flow}' (expected one of {', '.join(sorted(LABELS))})")
    if facts.error:
        return _refuse(facts.error, facts)
    if facts.number != requirement.pr:
        return _refuse(f"facts are for PR #{facts.number}, not PR #{requirement.pr}", facts)
    problem = plan_path_problem(requirement.plan_path)
    if problem:
        return _refuse(problem, facts)
    pr = f"PR #{requirement.pr}"
    if facts.merged:
        return _refuse(f"{pr} is merged", facts)
    if facts.is_open is not True:
        return _refuse(f"{pr} is closed" if facts.is_open is False else f"{pr} state is unknown", facts)
    if facts.from_base_repo is not True:
        if facts.head_repo is None:
            return _refuse(f"{pr} is from a fork (its head repository was deleted)", facts)
        return _refuse(f"{pr} is from a fork", facts)
    if label not in (facts.labels or ()):
        return _refuse(f"PR missing label '{label}'", facts)
    if not facts.label_actor:
        return _refuse(f"no 'labeled' event found for label '{label}'", facts)
    if not trigger_role_ok(facts.label_actor_role, facts.label_actor_permission):
        role = facts.label_actor_role or facts.label_actor_permission or "none"
        return _refuse(f"label '{label}' was added by '{facts.label_actor}' whose permission is '{role}' "
                       f"(needs {', '.join(TRIGGER_ROLES[:-1])} or {TRIGGER_ROLES[-1]})", facts)
    if not facts.head_sha:
        return _refuse(f"{pr} head SHA is unknown", facts)
    if requirement.expected_head_sha and facts.head_sha != requirement.expected_head_sha:
        return _refuse(f"head SHA changed since the label was added ({short(requirement.expected_head_sha)} -> "
                       f"{short(facts.head_sha)})", facts)
    if not facts.plan_blob_sha:
        return _refuse(f"plan file {requirement.plan_path} not found at head {short(facts.head_sha)}", facts)
    if requirement.require_approval and not facts.approvals:
        return _refuse(f"{pr} has no approving review on head {short(facts.head_sha)}", facts)
    approved = f", approved by {', '.join(facts.approvals)}" if facts.approvals else ""
    return GateDecision(
        True,
        f"label '{label}' added by '{facts.label_actor}' ({facts.label_actor_role}) on {pr} "
        f"at head {short(facts.head_sha)}{approved}",
        facts.head_sha, facts.plan_blob_sha, facts.label_actor,
    )


def recheck(first: GateDecision, now: PullRequestFacts, requirement: GateRequirement) -> GateDecision:
    """Right before executing: the first decision must have passed, the head SHA and the plan file's blob SHA
    must be the ones it saw, and every gate condition must still hold (label still present, PR still open...)."""
    if not first.allowed:
        return first
    if now.error:
        return _refuse(now.error, now)
    if not first.head_sha or not first.plan_blob_sha:
        return _refuse("the first check recorded no head SHA or plan file SHA", now)
    if now.head_sha != first.head_sha:
        return _refuse(f"head SHA changed since the check ({short(first.head_sha)} -> {short(now.head_sha)})",
                       now)
    if now.plan_blob_sha != first.plan_blob_sha:
        return _refuse(f"plan file {requirement.plan_path} changed since the check", now)
    label = LABELS.get(requirement.flow)
    if label is not None and label not in (now.labels or ()):
        return _refuse(f"label '{label}' was removed since the check", now)
    decision = evaluate_gate(now, requirement)
    if not decision.allowed:
        return decision
    return GateDecision(True, f"re-checked: {decision.reason}", first.head_sha, first.plan_blob_sha,
                        decision.label_actor)
