"""Every fixed vocabulary of a run, as StrEnums: they compare equal to, and serialize as, their plain strings, so
records written before them read the same."""

from enum import StrEnum


class StepStatus(StrEnum):
    """A step's state: `pending` until it runs, then one of the others (`unchanged`: found already as wanted)."""

    PENDING = "pending"
    PREVIEWED = "previewed"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNCHANGED = "unchanged"
    DRIFTED = "drifted"

    @property
    def ok(self) -> bool:
        """Whether the step leaves the run successful: `drifted` and `skipped` steps were not done."""
        return self in (StepStatus.PREVIEWED, StepStatus.SUCCEEDED, StepStatus.UNCHANGED)


class StepType(StrEnum):
    """The seed's result `type`: a plan action, a rollback hint, a rollout check, or an undo of `--atomic`."""

    ACTION = "action"
    HINT = "hint"
    VERIFY = "verify"
    ROLLBACK = "rollback"


class Verdict(StrEnum):
    """How a live object compares with an apply record, right before its undo."""

    REVERSE = "reverse"
    """As apply left it: the undo may run."""
    UNCHANGED = "unchanged"
    """As it was before apply: nothing to undo."""
    DRIFTED = "drifted"
    """Neither: someone changed it since; left alone unless forced."""


class RecordStatus(StrEnum):
    """An apply record's state, and its last rollback's (`succeeded` / `failed`)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"
    ROLLBACK_FAILED = "rollback-failed"


class Outcome(StrEnum):
    """The contract's last line."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class ActionType(StrEnum):
    """A plan action's `type`."""

    SCALE_WORKLOAD = "scale_workload"
    UPDATE_RESOURCES = "update_resources"
    APPLY_HPA = "apply_hpa"


class CommitState(StrEnum):
    """A GitHub commit status's `state`: the only four GitHub accepts."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"


class OutputFormat(StrEnum):
    """`-o`: the seed's lines, or the JSON summary alone on stdout."""

    TEXT = "text"
    JSON = "json"


class Role(StrEnum):
    """A collaborator's GitHub role (`role_name`), least to most; `write` and above may trigger an execution."""

    NONE = "none"
    READ = "read"
    TRIAGE = "triage"
    WRITE = "write"
    MAINTAIN = "maintain"
    ADMIN = "admin"
