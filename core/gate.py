"""The execution gate, as pure logic: facts about a pull request in, a decision with its reason out.

No network and no Prefect here: ``integrations/github.py`` gathers the facts, this module judges them.
Every field of ``PullRequestFacts`` is None-safe: None always means "no" (or "unknown"), and "unknown"
never lets anything through (fail closed).

Reasons are short sentences without a trailing period; callers print ``Refusing to execute: <reason>.``.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable, Collection, Mapping
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
    # commits dated after the label) and retargets (issue events' `base_ref_changed`: the label binds the base as
    # it binds the head), as short descriptions; () when none, None when the timeline was not read.
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


@dataclass(frozen=True)
class GateCheck:
    """What every requirement judges: the facts, the requirement, the flow's label and the trusted bots."""

    facts: PullRequestFacts
    requirement: GateRequirement
    label: str
    trusted_bots: frozenset[str]

    @property
    def pr(self) -> str:
        return f"PR #{self.requirement.pr}"


def facts_gathered(check: GateCheck) -> str | None:
    """The facts were gathered without error (an error always refuses)."""
    return check.facts.error or None


def facts_for_this_pr(check: GateCheck) -> str | None:
    """The facts describe the PR the run was asked for."""
    if check.facts.number != check.requirement.pr:
        return f"facts are for PR #{check.facts.number}, not PR #{check.requirement.pr}"
    return None


def paths_inside_repository(check: GateCheck) -> str | None:
    """The plan and every file it reads are normalized paths inside the repository."""
    for path in (check.requirement.plan_path, *check.requirement.read_paths):
        problem = plan_path_problem(path)
        if problem:
            return problem
    return None


def not_merged(check: GateCheck) -> str | None:
    """A merged PR's plan is history, not a change to make."""
    return f"{check.pr} is merged" if check.facts.merged else None


def open_pr(check: GateCheck) -> str | None:
    """The PR is known to be open."""
    if check.facts.is_open is True:
        return None
    return f"{check.pr} is closed" if check.facts.is_open is False else f"{check.pr} state is unknown"


def from_base_repository(check: GateCheck) -> str | None:
    """The head branch lives in the base repository: a fork's author is not bound by its protections."""
    if check.facts.from_base_repo is True:
        return None
    if check.facts.head_repo is None:
        return f"{check.pr} is from a fork (its head repository was deleted)"
    return f"{check.pr} is from a fork"


def not_draft(check: GateCheck) -> str | None:
    """The PR is known not to be a draft."""
    if check.facts.draft is False:
        return None
    return f"{check.pr} is a draft" if check.facts.draft else f"{check.pr} draft state is unknown"


def allowed_base(check: GateCheck) -> str | None:
    """The PR merges into a branch this worker executes for."""
    facts = check.facts
    if facts.base_ref and facts.base_ref in facts.allowed_bases:
        return None
    allowed = ", ".join(f"'{base}'" for base in facts.allowed_bases) or "unknown"
    return (f"{check.pr} merges into '{facts.base_ref or 'an unknown branch'}', not a branch this worker executes "
            f"for ({allowed}; INFRA_BASE_BRANCHES adds others)")


def labeled(check: GateCheck) -> str | None:
    """The PR carries the flow's label."""
    return None if check.label in (check.facts.labels or ()) else f"PR missing label '{check.label}'"


def label_event_found(check: GateCheck) -> str | None:
    """GitHub's timeline names who added the label."""
    return None if check.facts.label_actor else f"no 'labeled' event found for label '{check.label}'"


def not_an_untrusted_bot(check: GateCheck) -> str | None:
    """A bot's label counts only when the bot is configured as trusted (INFRA_TRUSTED_BOTS)."""
    actor = str(check.facts.label_actor)
    if not is_bot(actor, check.facts.label_actor_type) or actor.lower() in check.trusted_bots:
        return None
    return (f"label '{check.label}' was added by bot account '{actor}', which is not a trusted bot "
            f"(INFRA_TRUSTED_BOTS)")


def labeller_may_trigger(check: GateCheck) -> str | None:
    """Whoever added the label has write, maintain or admin permission."""
    facts = check.facts
    if trigger_role_ok(facts.label_actor_role, facts.label_actor_permission):
        return None
    role = facts.label_actor_role or facts.label_actor_permission or "none"
    return (f"label '{check.label}' was added by '{facts.label_actor}' whose permission is '{role}' "
            f"(needs {', '.join(TRIGGER_ROLES[:-1])} or {TRIGGER_ROLES[-1]})")


def head_known(check: GateCheck) -> str | None:
    """The PR's head commit is known."""
    return None if check.facts.head_sha else f"{check.pr} head SHA is unknown"


def head_is_the_labeled_one(check: GateCheck) -> str | None:
    """The head is the one the label was added on, when the caller knows that one."""
    expected, head = check.requirement.expected_head_sha, check.facts.head_sha
    if not expected or head == expected:
        return None
    return f"head SHA changed since the label was added ({short(expected)} -> {short(head)}); {RELABEL}"


def no_push_after_label(check: GateCheck) -> str | None:
    """Nothing was pushed after the label was added, and the timeline says so."""
    pushed = check.facts.pushed_after_label
    if pushed is None:
        return f"could not tell whether {check.pr} changed after label '{check.label}' was added"
    if pushed:
        return f"{check.pr} changed after label '{check.label}' was added ({', '.join(pushed)}); {RELABEL}"
    return None


def plan_at_head(check: GateCheck) -> str | None:
    """The plan file exists at the head."""
    if check.facts.plan_blob_sha:
        return None
    return f"plan file {check.requirement.plan_path} not found at head {short(check.facts.head_sha)}"


def plan_changed_by_pr(check: GateCheck) -> str | None:
    """A label runs only the plan its own PR changes."""
    if check.facts.plan_changed is True:
        return None
    return (f"plan file {check.requirement.plan_path} is not among the files {check.pr} changes: a label runs only "
            "its own PR's plan")


def read_files_at_head(check: GateCheck) -> str | None:
    """Every file the plan reads exists in the PR at the head."""
    for path in check.requirement.read_paths:
        if not check.facts.file_blob_shas.get(path):
            return f"file {path} (read by the plan) not found in {check.pr} at head {short(check.facts.head_sha)}"
    return None


def approved(check: GateCheck) -> str | None:
    """When the requirement asks for it, someone with write access approved the head."""
    if check.requirement.require_approval and not check.facts.approvals:
        return f"{check.pr} has no approving review on head {short(check.facts.head_sha)}"
    return None


GATE_REQUIREMENTS: tuple[Callable[[GateCheck], str | None], ...] = (
    facts_gathered, facts_for_this_pr, paths_inside_repository, not_merged, open_pr, from_base_repository,
    not_draft, allowed_base, labeled, label_event_found, not_an_untrusted_bot, labeller_may_trigger, head_known,
    head_is_the_labeled_one, no_push_after_label, plan_at_head, plan_changed_by_pr, read_files_at_head, approved,
)
"""The gate's requirements, in the order a reader would check them: the first that names a reason refuses."""


def evaluate_gate(facts: PullRequestFacts, requirement: GateRequirement,
                  trusted_bots: Collection[str] = ()) -> GateDecision:
    """Every requirement of ``GATE_REQUIREMENTS`` in turn; the first failing one is the reason.

    `trusted_bots`: bot logins (configuration) whose labels count; any other bot's label is refused."""
    label = LABELS.get(requirement.flow)
    if label is None:
        return _refuse(f"unknown flow '{requirement.flow}' (expected one of {', '.join(sorted(LABELS))})")
    check = GateCheck(facts, requirement, label, frozenset(login.lower() for login in trusted_bots))
    for requirement_met in GATE_REQUIREMENTS:
        reason = requirement_met(check)
        if reason is not None:
            return _refuse(reason, facts)
    approvals = f", approved by {', '.join(facts.approvals)}" if facts.approvals else ""
    return GateDecision(
        True,
        f"label '{label}' added by '{facts.label_actor}' ({facts.label_actor_role}) on {check.pr} "
        f"at head {short(facts.head_sha)}{approvals}",
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
