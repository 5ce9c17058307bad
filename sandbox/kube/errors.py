"""Kubernetes ``Status`` errors.

kubectl prints ``Error from server (<reason>): <message>`` only when the body is a ``Status`` with a standard
reason; anything else makes it dump raw JSON. Every failure in the sandbox therefore goes through
:class:`ApiError`, which knows how to render itself as such a ``Status``.
"""

from __future__ import annotations

from typing import Any

REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An error answered to the client as a ``Status`` object."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "InternalError" if code >= 500 else "BadRequest")
        self.details = details

    def status(self) -> dict[str, Any]:
        """Render as a ``Status`` body."""
        return status_body(self.code, self.message, self.reason, self.details)


def status_body(
    code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A failure ``Status`` as kube-apiserver writes it."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, "BadRequest"),
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def qualified(plural: str, group: str) -> str:
    """``deployments.apps`` / ``configmaps``: the resource name kube-apiserver uses in messages."""
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        f'{qualified(plural, group)} "{name}" not found',
        "NotFound",
        {"name": name, "group": group, "kind": plural},
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'{qualified(plural, group)} "{name}" already exists',
        "AlreadyExists",
        {"name": name, "group": group, "kind": plural},
    )


def conflict(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        "Conflict",
        {"name": name, "group": group, "kind": plural},
    )


CAUSE_REASONS = {
    "Invalid value": "FieldValueInvalid",
    "Required value": "FieldValueRequired",
    "Too long": "FieldValueTooLong",
    "Unsupported value": "FieldValueNotSupported",
    "Forbidden": "FieldValueForbidden",
}


def _cause(text: str) -> dict[str, str]:
    """``spec.replicas: Invalid value: -1: ...`` as a StatusCause (field, reason, message)."""
    field, _, message = text.partition(": ")
    kind = message.split(":", 1)[0]
    return {"reason": CAUSE_REASONS.get(kind, "FieldValueInvalid"), "message": message or text, "field": field}


def invalid(kind: str, group: str, name: str, causes: list[str]) -> ApiError:
    """422 Invalid, formatted like ``Deployment.apps "web" is invalid: spec.replicas: ...``."""
    qual = f"{kind}.{group}" if group else kind
    return ApiError(
        422,
        f'{qual} "{name}" is invalid: ' + ", ".join(causes),
        "Invalid",
        {"name": name, "group": group, "kind": kind, "causes": [_cause(c) for c in causes]},
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "BadRequest")
