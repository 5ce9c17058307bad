"""Check the test server's responses against the vendored GitHub OpenAPI subset."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).resolve().parent / "openapi" / "api.github.com.subset.json"
# Items of these event types must also match their exact schema (the list schema is a permissive anyOf).
EXACT_EVENT_SCHEMAS = {"labeled": "labeled-issue-event", "unlabeled": "unlabeled-issue-event",
                       "committed": "timeline-committed-event"}


@functools.cache
def spec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return data


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        _, _, kind, name = node["$ref"].split("/", 3)
        node = spec()["components"][kind][name]
    return node


def response_schema(template: str, method: str, status: int) -> dict[str, Any] | None:
    """The JSON schema GitHub documents for this operation and status, or None if it documents none."""
    operation = spec()["paths"].get(template, {}).get(method)
    if operation is None:
        raise KeyError(f"operation {method.upper()} {template} is not in the vendored spec")
    responses = operation["responses"]
    response = responses.get(str(status)) or responses.get("default")
    if response is None:
        return None
    content = _resolve(response).get("content", {})
    media = content.get("application/json") or content.get("application/scim+json")
    if media is None:
        return None
    schema: dict[str, Any] | None = media.get("schema")
    return schema


@functools.cache
def _validator_for(schema_json: str) -> Any:
    from openapi_schema_validator import OAS30Validator

    schema = json.loads(schema_json)
    return OAS30Validator({**schema, "components": spec()["components"]})


def errors_for(schema: dict[str, Any], body: Any, limit: int = 5) -> list[str]:
    validator = _validator_for(json.dumps(schema, sort_keys=True))
    out = []
    for error in validator.iter_errors(body):
        where = "/".join(str(p) for p in error.absolute_path) or "<root>"
        out.append(f"{where}: {error.message[:300]}")
        if len(out) >= limit:
            break
    return out


def check_response(template: str, method: str, status: int, body: Any) -> list[str]:
    """Schema errors for one response (empty when it conforms or GitHub documents no body for it)."""
    schema = response_schema(template, method, status)
    problems: list[str] = []
    if schema is not None and "discriminator" in schema and isinstance(body, list):
        # The contents operation puts a `type` discriminator on a oneOf whose directory branch is an array;
        # validators can only read a discriminator from an object, so check arrays against the plain oneOf.
        schema = {k: v for k, v in schema.items() if k != "discriminator"}
    if schema is not None and status >= 400 and "oneOf" in schema:
        # Error bodies: GitHub's oneOf of basic-error and repository-rule-violation-error overlap (neither has
        # required fields), so no body can match exactly one; anyOf is what the description means.
        schema = {"anyOf": schema["oneOf"]}
    if schema is not None:
        problems += errors_for(schema, body)
    if template.endswith(("/events", "/timeline")) and isinstance(body, list):
        for i, item in enumerate(body):
            exact = EXACT_EVENT_SCHEMAS.get(str(item.get("event"))) if isinstance(item, dict) else None
            if exact:
                ref = {"$ref": f"#/components/schemas/{exact}"}
                problems += [f"[{i}] as {exact}: {e}" for e in errors_for(ref, item)]
    return problems
