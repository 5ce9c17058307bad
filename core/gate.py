"""The execution gate, as pure logic: facts about a pull request in, a decision with its reason out.

No network and no Prefect here: ``integrations/github.py`` gathers the facts, this module judges them.
Every field of ``PullRequestFacts`` is None-safe: None always means "no" (or "unknown"), and "unknown"
never lets anything through (fail closed).

Reasons are short sentences without a trailing period; callers print ``Refusing to execute: <reason>.``.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from core.conventions import LABELS, REPOSITORY_PATTERN, Flow
from core.plan import Plan
from core.vocabulary import Role

# Roles allowed to trigger an execution (GitHub's role_name; maintain and write map to legacy "write").
TRIGGER_ROLES = (Role.WRITE, Role.MAINTAIN, Role.ADMIN)
RELABEL = "add the label again to run the new head"


@dataclass(frozen=True)
class GateRequirement:
    flow: Flow
    pr: int
    plan_path: str  # repository-relative POSIX path of the plan file
    require_approval: bool = False
    repository: str | None = None  # "owner/name"; None: GH_OWNER/GH_REPO from the environment
    # Head SHA when the label was added, if the caller knows it (the `labeled` webhook payload carries
    # pull_request.head.sha). Closes the label-then-push window: a commit pushed after the label refuses.
    expected_head_sha: str | None = None
    # Repository paths of the other files the run reads (apply_hpa manifests, manifest hints): each must be,
    # byte for byte, the file the PR carries at the head the gate checked.
    read_paths: tuple[str, ...] = ()


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
    label_actor_type: str | None = None  # GitHub's user type: User, Bot, Organization
    # Pushes after the newest `labeled` event (timeline `committed` / `head_ref_force_pushed` events, or
    # commits dated after the label), as short descriptions; () when none, None when the timeline was not read.
    pushed_after_label: tuple[str, ...] | None = None
    # Blob SHA of the plan file at head_sha (None when the file does not exist there).
    plan_blob_sha: str | None = None
    # Blob SHA at head_sha of each of the requirement's read_paths (None: not in the PR at that head).
    file_blob_shas: Mapping[str, str | None] = field(default_factory=dict)
    # Logins whose latest review is APPROVED on head_sha and who have write access or more.
    approvals: tuple[str, ...] | None = None
    # Whether the plan file is among the files the PR changes (`pulls/N/files`): a label runs its PR's own plan.
    plan_changed: bool | None = None
    # The branch the PR merges into, and the bases this worker accepts (the default branch, INFRA_BASE_BRANCHES).
    base_ref: str | None = None
    allowed_bases: tuple[str, ...] = ()
    # Set when the facts could not be gathered (bad settings, GitHub error): always refuses.
    error: str | None = None


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    reason: str
    head_sha: str | None
    plan_blob_sha: str | None
    label_actor: str | None = None
    file_blob_shas: Mapping[str, str | None] = field(default_factory=dict)
    base_ref: str | None = None
    label_actor_role: str | None = None
    """The labeller's permission (GitHub's role name) when the gate checked it."""
    label_added_at: str | None = None
    """When the newest `labeled` event for the flow's label was made (GitHub's timestamp)."""

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
    if role in (None, "", Role.NONE, Role.READ, Role.TRIAGE):
        return False
    return legacy_permission in (Role.WRITE, Role.ADMIN)


def plan_path_problem(path: str) -> str | None:
    if not path or path.startswith("/") or "\\" in path:
        return f"plan path '{path}' must be relative to the repository root"
    norm = posixpath.normpath(path)
    if norm.startswith("..") or norm != path.removeprefix("./"):
        return f"plan path '{path}' must be a normalized path inside the repository"
    if "-->" in path or "\n" in path:
        return f"plan path '{path}' contains characters that are not allowed"
    return None


def repository_problem(requested: str | None, configured: str | None, allowed: Collection[str]) -> str | None:
    """Why this worker must not serve `requested` ("owner/name" from an event), or None.

    The worker serves its configured repository (GH_OWNER/GH_REPO) and those explicitly allowed
    (INFRA_REPOSITORIES); an event's word alone never picks the repository whose label gates this cluster.
    """
    if requested is None:
        return None
    if not REPOSITORY_PATTERN.fullmatch(requested):
        return f"repository {requested!r} is not owner/name"
    served = {name.lower() for name in (configured, *allowed) if name}
    if requested.lower() not in served:
        listed = ", ".join(sorted(served)) or "none configured"
        return (f"repository {requested} is not served by this worker (serves: {listed}; set GH_OWNER/GH_REPO "
                f"or INFRA_REPOSITORIES)")
    return None


def is_bot(login: str | None, user_type: str | None) -> bool:
    return user_type == "Bot" or (login or "").endswith("[bot]")


def git_blob_sha(data: bytes) -> str:
    """The id git (and GitHub's tree and contents APIs) gives a file with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def local_files_problem(decision: GateDecision, requirement: GateRequirement,
                        local: Mapping[str, bytes | None]) -> str | None:
    """The first file the run read that is not, byte for byte, the one the PR carries at the head the gate checked
    (`local`: repository path -> the bytes the run parsed (`files_read_by`), None when absent), or None when all
    match."""
    pinned = {requirement.plan_path: decision.plan_blob_sha, **decision.file_blob_shas}
    at = f"PR #{requirement.pr} carries at {short(decision.head_sha)}"
    for path in (requirement.plan_path, *requirement.read_paths):
        name = "the plan file" if path == requirement.plan_path else path
        expected, data = pinned.get(path), local.get(path)
        if expected is None:
            return f"{name} is not in the files {at}"
        if data is None:
            return f"{name} does not exist here ({at} blob {short(expected)})"
        here = git_blob_sha(data)
        if here != expected:
            where = "the plan file here" if path == requirement.plan_path else f"{path} here"
            return f"{where} (blob {short(here)}) is not the one {at} (blob {short(expected)})"
    return None


def context_problem(context: str | None, allowed: Collection[str]) -> str | None:
    """Why a plan naming `context` (None: the kubeconfig's current one) must not run here, or None: a plan may
    switch to another cluster of the worker's kubeconfig only when that context is allow-listed."""
    if context is None or context in allowed:
        return None
    listed = ", ".join(f"'{name}'" for name in allowed) or "none"
    return (f"the plan's context '{context}' is not one this worker may change (allowed: {listed}; set "
            "INFRA_CONTEXTS)")


def files_read_by(plan: Plan, plan_path: str) -> dict[str, bytes]:
    """{repository path: bytes as read once} of the plan and of every file a run of `plan` reads (apply_hpa
    manifests, manifest hints, `kubectl apply -f` hints): the bytes that were parsed, never the disk again.
    `plan_path` is the plan's repository path."""
    base = posixpath.dirname(plan_path)
    return {plan_path: plan.data,
            **{posixpath.normpath(posixpath.join(base, path)): data for path, data in plan.files.items()}}


def _refuse(reason: str, facts: PullRequestFacts | None = None) -> GateDecision:
    return GateDecision(False, reason, facts.head_sha if facts else None,
                        facts.plan_blob_sha if facts else None, facts.label_actor if facts else None,
                        dict(facts.file_blob_shas) if facts else {}, facts.base_ref if facts else None)


def evaluate_gate(facts: PullRequestFacts, requirement: GateRequirement,
                  trusted_bots: Collection[str] = ()) -> GateDecision:
    """All gate conditions, in the order a reader would check them; the first failing one is the reason.

    `trusted_bots`: bot logins (configuration) whose labels count; any other bot's label is refused."""
    label = LABELS.get(requirement.flow)
    if label is None:
        return _refuse(f"unknown flow '{requirement.flow}' (expected one of {', '.join(sorted(LABELS))})")
    if facts.error:
        return _refuse(facts.error, facts)
    if facts.number != requirement.pr:
        return _refuse(f"facts are for PR #{facts.number}, not PR #{requirement.pr}", facts)
    for path in (requirement.plan_path, *requirement.read_paths):
        problem = plan_path_problem(path)
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
    if facts.draft is not False:
        return _refuse(f"{pr} is a draft" if facts.draft else f"{pr} draft state is unknown", facts)
    if not facts.base_ref or facts.base_ref not in facts.allowed_bases:
        allowed = ", ".join(f"'{base}'" for base in facts.allowed_bases) or "unknown"
        return _refuse(f"{pr} merges into '{facts.base_ref or 'an unknown branch'}', not a branch this worker "
                       f"executes for ({allowed}; INFRA_BASE_BRANCHES adds others)", facts)
    if label not in (facts.labels or ()):
        return _refuse(f"PR missing label '{label}'", facts)
    if not facts.label_actor:
        return _refuse(f"no 'labeled' event found for label '{label}'", facts)
    trusted = {login.lower() for login in trusted_bots}
    if is_bot(facts.label_actor, facts.label_actor_type) and facts.label_actor.lower() not in trusted:
        return _refuse(f"label '{label}' was added by bot account '{facts.label_actor}', which is not a trusted "
                       f"bot (INFRA_TRUSTED_BOTS)", facts)
    if not trigger_role_ok(facts.label_actor_role, facts.label_actor_permission):
        role = facts.label_actor_role or facts.label_actor_permission or "none"
        return _refuse(f"label '{label}' was added by '{facts.label_actor}' whose permission is '{role}' "
                       f"(needs {', '.join(TRIGGER_ROLES[:-1])} or {TRIGGER_ROLES[-1]})", facts)
    if not facts.head_sha:
        return _refuse(f"{pr} head SHA is unknown", facts)
    if requirement.expected_head_sha and facts.head_sha != requirement.expected_head_sha:
        return _refuse(f"head SHA changed since the label was added ({short(requirement.expected_head_sha)} -> "
                       f"{short(facts.head_sha)}); {RELABEL}", facts)
    if facts.pushed_after_label is None:
        return _refuse(f"could not tell whether {pr} changed after label '{label}' was added", facts)
    if facts.pushed_after_label:
        return _refuse(f"{pr} changed after label '{label}' was added ({', '.join(facts.pushed_after_label)}); "
                       f"{RELABEL}", facts)
    if not facts.plan_blob_sha:
        return _refuse(f"plan file {requirement.plan_path} not found at head {short(facts.head_sha)}", facts)
    if facts.plan_changed is not True:
        return _refuse(f"plan file {requirement.plan_path} is not among the files {pr} changes: a label runs only "
                       "its own PR's plan", facts)
    for path in requirement.read_paths:
        if not facts.file_blob_shas.get(path):
            return _refuse(f"file {path} (read by the plan) not found in {pr} at head {short(facts.head_sha)}",
                           facts)
    if requirement.require_approval and not facts.approvals:
        return _refuse(f"{pr} has no approving review on head {short(facts.head_sha)}", facts)
    approved = f", approved by {', '.join(facts.approvals)}" if facts.approvals else ""
    return GateDecision(
        True,
        f"label '{label}' added by '{facts.label_actor}' ({facts.label_actor_role}) on {pr} "
        f"at head {short(facts.head_sha)}{approved}",
        facts.head_sha, facts.plan_blob_sha, facts.label_actor,
        {path: facts.file_blob_shas[path] for path in requirement.read_paths}, facts.base_ref,
        facts.label_actor_role, facts.label_added_at,
    )


def recheck(first: GateDecision, now: PullRequestFacts, requirement: GateRequirement,
            trusted_bots: Collection[str] = ()) -> GateDecision:
    """Right before executing: the first decision must have passed, the head SHA and the blob SHAs of the plan
    and of every file it reads must be the ones it saw, and every gate condition must still hold (label still
    present, PR still open...)."""
    if not first.allowed:
        return first
    if now.error:
        return _refuse(now.error, now)
    if not first.head_sha or not first.plan_blob_sha:
        return _refuse("the first check recorded no head SHA or plan file SHA", now)
    if now.head_sha != first.head_sha:
        return _refuse(f"head SHA changed since the check ({short(first.head_sha)} -> {short(now.head_sha)})",
                       now)
    if now.base_ref != first.base_ref:
        return _refuse(f"the PR's base branch changed since the check ('{first.base_ref}' -> '{now.base_ref}'); "
                       f"{RELABEL}", now)
    if now.plan_blob_sha != first.plan_blob_sha:
        return _refuse(f"plan file {requirement.plan_path} changed since the check", now)
    for path in requirement.read_paths:
        if not first.file_blob_shas.get(path) or now.file_blob_shas.get(path) != first.file_blob_shas[path]:
            return _refuse(f"file {path} changed since the check", now)
    label = LABELS.get(requirement.flow)
    if label is not None and label not in (now.labels or ()):
        return _refuse(f"label '{label}' was removed since the check", now)
    decision = evaluate_gate(now, requirement, trusted_bots)
    if not decision.allowed:
        return decision
    return GateDecision(True, f"re-checked: {decision.reason}", first.head_sha, first.plan_blob_sha,
                        decision.label_actor, dict(first.file_blob_shas), first.base_ref)
