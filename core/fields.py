"""Declared fields: one declaration per input field, from which both the validator and the JSON Schema come.

A `Record` lists its fields, each with a `Spec` (the rule for its value) and whether it is required. Opening a
mapping with `Record.open` checks every rule (unknown fields, required fields, each value, fields that exclude
each other) and gives a `Fields`, whose typed accessors only read what was checked. `Record.schema()` renders
the same declarations as JSON Schema (draft 2020-12) for editors. Rules that relate two values (a request above
its limit, minReplicas above maxReplicas) are checked by the parsers and cannot be shown by the schema.

Every error names the file and the dotted field: `error: <file>: <field>: <message>`.
"""

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from core.errors import InputError
from core.k8s import (
    CONTEXT_PATTERN,
    DNS_LABEL_PATTERN,
    MAX_NAME_LENGTH,
    QUANTITY_PATTERN,
    RESOURCE_NAME_PATTERN,
    context_problem,
    dns_label_problem,
    parse_quantity,
    resource_name_problem,
    shown,
)

Schema = dict[str, Any]
_SIMPLE_KEY = re.compile("[!-~]{1,63}")  # printable ASCII, no space: cannot break the line


def anchored(pattern: str) -> str:
    """`pattern` as JSON Schema applies it (a search), anchored at both ends. The end is "nothing follows" as a
    lookahead, which ECMA-262 and Python read alike; Python's `$` also matches before a final newline."""
    return f"^({pattern})(?![\\s\\S])"


def key_text(key: object) -> str:
    """A mapping key as a field path shows it: as is when short printable ASCII, else quoted and cut."""
    return key if isinstance(key, str) and _SIMPLE_KEY.fullmatch(key) else shown(key)


def type_name(value: object) -> str:
    """A YAML-flavoured name for the type of `value`, for error messages."""
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "nothing"}
    for kind, label in names.items():
        if isinstance(value, kind):
            return label
    return type(value).__name__


class Spec(ABC):
    """The rule for one field's value: `check` refuses a bad value through `fields.fail`, `schema` shows it."""

    @abstractmethod
    def check(self, fields: "Fields", key: str, value: object) -> None: ...

    @abstractmethod
    def schema(self) -> Schema: ...


@dataclass(frozen=True)
class Text(Spec):
    """A non-empty string (free text: reasons, descriptions, dates)."""

    def check(self, fields: "Fields", key: str, value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            fields.fail(key, f"must be a non-empty string, not {type_name(value)}")

    def schema(self) -> Schema:
        return {"type": "string", "minLength": 1, "pattern": "\\S"}


@dataclass(frozen=True)
class Matching(Spec):
    """A string matching `pattern` in full; `problem` says why a value does not (names, contexts)."""

    pattern: str
    problem: Callable[[object], str | None]
    max_length: int | None = None
    description: str | None = None
    """What the value means, for the schema's readers (editors show it)."""

    def check(self, fields: "Fields", key: str, value: object) -> None:
        problem = self.problem(value)
        if problem:
            fields.fail(key, problem)

    def schema(self) -> Schema:
        schema: Schema = {"type": "string", "pattern": anchored(self.pattern)}
        schema |= {"maxLength": self.max_length} if self.max_length is not None else {}
        return schema | ({"description": self.description} if self.description is not None else {})


@dataclass(frozen=True)
class Choice(Spec):
    """One of a few fixed strings."""

    values: tuple[str, ...]
    problem: str = "is not supported"

    def check(self, fields: "Fields", key: str, value: object) -> None:
        if value not in self.values:
            fields.fail(key, f"{shown(value)} {self.problem} (use {' or '.join(self.values)})")

    def schema(self) -> Schema:
        return {"const": self.values[0]} if len(self.values) == 1 else {"enum": list(self.values)}


@dataclass(frozen=True)
class Integer(Spec):
    """A whole number in [low, high]; booleans are not numbers, and YAML text like `1:30` stays a string."""

    low: int
    high: int

    def check(self, fields: "Fields", key: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            fields.fail(key, f"must be a whole number, not {type_name(value)} {shown(value)}")
        if not self.low <= value <= self.high:
            fields.fail(key, f"{value} is out of range ({self.low} to {self.high})")

    def schema(self) -> Schema:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


@dataclass(frozen=True)
class Scalar(Spec):
    """A label that may be written as a string or a whole number (a plan's `version`)."""

    def check(self, fields: "Fields", key: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, str | int):
            fields.fail(key, f"must be a string or a whole number, not {type_name(value)}")

    def schema(self) -> Schema:
        return {"type": ["string", "integer"]}


@dataclass(frozen=True)
class Anything(Spec):
    """Information only, never read (e.g. `current`, what the cluster held when the plan was written)."""

    def check(self, fields: "Fields", key: str, value: object) -> None:
        return None

    def schema(self) -> Schema:
        return {}


@dataclass(frozen=True)
class Quantities(Spec):
    """{resource name: quantity} ("250m", "1", "512Mi"; YAML whole numbers allowed)."""

    def check(self, fields: "Fields", key: str, value: object) -> None:
        if not isinstance(value, Mapping):
            fields.fail(key, f"must be a mapping, not {type_name(value)}")
        for name, quantity in value.items():
            problem = resource_name_problem(name)
            if problem:
                fields.fail(f"{key}.{key_text(name)}", problem)
            if quantity_text(quantity) is None:
                fields.fail(f"{key}.{name}", f"{shown(quantity)} is not a Kubernetes quantity (e.g. 250m, 1, 512Mi)")

    def schema(self) -> Schema:
        return {"type": "object", "propertyNames": {"pattern": anchored(RESOURCE_NAME_PATTERN)},
                "additionalProperties": {"anyOf": [{"type": "string", "pattern": anchored(QUANTITY_PATTERN)},
                                                   {"type": "integer", "minimum": 0}]}}


@dataclass(frozen=True)
class Items(Spec):
    """A list of at most `max_items` entries, each shown by `item`; the parsers check each entry in context."""

    item: Schema
    max_items: int

    def check(self, fields: "Fields", key: str, value: object) -> None:
        if not isinstance(value, list):
            fields.fail(key, f"must be a list, not {type_name(value)}")
        if len(value) > self.max_items:
            fields.fail(key, f"has {len(value)} entries; the limit is {self.max_items}")

    def schema(self) -> Schema:
        return {"type": "array", "maxItems": self.max_items, "items": self.item}


@dataclass(frozen=True)
class Field:
    """A declared field: its rule, and whether it must be given (or what it is when it is not)."""

    spec: Spec
    required: bool = False
    default: object = None


@dataclass(frozen=True)
class Exclusive:
    """Fields of `first` and fields of `second` may not be given together; the error names `first[0]`."""

    first: tuple[str, ...]
    second: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class Needs:
    """At least one of `any_of` must be given; the error names `field`."""

    any_of: tuple[str, ...]
    field: str
    message: str


@dataclass(frozen=True)
class Record(Spec):
    """A mapping with declared fields, in the order they are checked."""

    fields: Mapping[str, Field]
    exclusive: tuple[Exclusive, ...] = ()
    needs: tuple[Needs, ...] = ()
    notes: Schema = field(default_factory=dict)
    """Schema keywords that only describe (title, description)."""

    def open(self, data: object, source: str, path: str) -> "Fields":
        fields = Fields(data, self, source, path)
        for key, declared in self.fields.items():
            if fields.has(key):
                declared.spec.check(fields, key, fields.data[key])
            elif declared.required:
                fields.fail(key, "is required")
        for rule in self.exclusive:
            if any(map(fields.has, rule.first)) and any(map(fields.has, rule.second)):
                fields.fail(rule.first[0], rule.message)
        for need in self.needs:
            if not any(map(fields.has, need.any_of)):
                fields.fail(need.field, need.message)
        return fields

    def check(self, fields: "Fields", key: str, value: object) -> None:
        self.open(value, fields.source, fields.where(key))

    def schema(self) -> Schema:
        schema: Schema = {**self.notes, "type": "object", "additionalProperties": False,
                          "properties": {key: _with_default(declared) for key, declared in self.fields.items()}}
        required = [key for key, declared in self.fields.items() if declared.required]
        if required:
            schema["required"] = required
        rules = [{"not": {"allOf": [_any_given(rule.first), _any_given(rule.second)]}} for rule in self.exclusive]
        rules += [_any_given(need.any_of) for need in self.needs]
        if rules:
            schema["allOf"] = rules
        return schema


def _with_default(declared: Field) -> Schema:
    schema = declared.spec.schema()
    return schema if declared.default is None else schema | {"default": declared.default}


def _any_given(keys: tuple[str, ...]) -> Schema:
    return {"anyOf": [{"required": [key]} for key in keys]}


@dataclass(frozen=True)
class Entries(Spec):
    """{key: record}, e.g. containers by name; `key` is the rule for the keys."""

    key: Matching
    value: Record

    def check(self, fields: "Fields", key: str, value: object) -> None:
        if not isinstance(value, Mapping):
            fields.fail(key, f"must be a mapping, not {type_name(value)}")
        if not value:
            fields.fail(key, "is empty")
        for name, entry in value.items():
            problem = self.key.problem(name)
            if problem:
                fields.fail(f"{key}.{key_text(name)}", problem)
            self.value.check(fields, f"{key}.{name}", entry)

    def schema(self) -> Schema:
        return {"type": "object", "minProperties": 1, "propertyNames": self.key.schema(),
                "additionalProperties": self.value.schema()}


NAME = Matching(DNS_LABEL_PATTERN, dns_label_problem, MAX_NAME_LENGTH)
"""A Kubernetes name, namespace, container or target: an RFC 1123 DNS label."""
CONTEXT = Matching(CONTEXT_PATTERN, context_problem)


def quantity_text(value: object) -> str | None:
    """A quantity as kubectl is given it, or None when `value` is not one (YAML whole numbers become text)."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    return text if isinstance(text, str) and parse_quantity(text) is not None else None


_STRING_SPECS = (Matching, Choice, Text)


class Fields:
    """One mapping read from a file and checked against its `Record`; `path` is its place in the document
    (e.g. `actions[2]`). The accessors read declared fields only."""

    def __init__(self, data: object, record: Record, source: str, path: str) -> None:
        self.source = source
        self.path = path
        self.declaration = record
        if not isinstance(data, Mapping):
            self.fail("", f"must be a mapping, not {type_name(data)}")
        self.data: Mapping[str, Any] = data
        for key in data:
            if not isinstance(key, str) or key not in record.fields:
                self.fail(key_text(key), f"unknown field (known: {', '.join(sorted(record.fields))})")

    def where(self, key: str) -> str:
        if not key:
            return self.path or "document"
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, message: str) -> NoReturn:
        raise InputError(self.source, self.where(key), message)

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def _declared(self, key: str, *kinds: type[Spec]) -> Field:
        declared = self.declaration.fields[key]
        if not isinstance(declared.spec, kinds):
            raise TypeError(f"{key} is declared as {type(declared.spec).__name__}, not {kinds[0].__name__}")
        return declared

    def _value(self, key: str, *kinds: type[Spec]) -> Any:
        """The checked value of a field that always has one (required, or with a default)."""
        declared = self._declared(key, *kinds)
        if not declared.required and declared.default is None:
            raise TypeError(f"{key} is optional without a default: read it with an optional_ accessor")
        return self.data[key] if self.has(key) else declared.default

    def _optional(self, key: str, *kinds: type[Spec]) -> Any:
        declared = self._declared(key, *kinds)
        if declared.required or declared.default is not None:
            raise TypeError(f"{key} always has a value: read it with the plain accessor")
        return self.data[key] if self.has(key) else None

    def string(self, key: str) -> str:
        value: str = self._value(key, *_STRING_SPECS)
        return value

    def optional_string(self, key: str) -> str | None:
        value: str | None = self._optional(key, *_STRING_SPECS)
        return value

    def integer(self, key: str) -> int:
        value: int = self._value(key, Integer)
        return value

    def optional_integer(self, key: str) -> int | None:
        value: int | None = self._optional(key, Integer)
        return value

    def quantities(self, key: str) -> dict[str, str]:
        raw: Mapping[str, object] = self._optional(key, Quantities) or {}
        return {name: str(quantity_text(value)) for name, value in raw.items()}

    def nested(self, key: str) -> "Fields":
        """A required nested record (already checked when this one was opened)."""
        return self._nested(key, self._value(key, Record))

    def optional_nested(self, key: str) -> "Fields | None":
        raw = self._optional(key, Record)
        return None if raw is None else self._nested(key, raw)

    def _nested(self, key: str, raw: object) -> "Fields":
        spec = self.declaration.fields[key].spec
        assert isinstance(spec, Record)
        return Fields(raw, spec, self.source, self.where(key))

    def entries(self, key: str) -> list[tuple[str, "Fields"]]:
        """{name: nested record} as (name, record) pairs, in file order."""
        spec = self._declared(key, Entries).spec
        assert isinstance(spec, Entries)
        raw: Mapping[str, object] = self._optional(key, Entries) or {}
        return [(name, Fields(value, spec.value, self.source, self.where(f"{key}.{name}")))
                for name, value in raw.items()]

    def items(self, key: str) -> list[Any]:
        """A list's entries (none when it is not given); the caller checks each one in its context."""
        self._declared(key, Items)
        value: list[Any] | None = self.data.get(key)
        return value or []

    def requests_and_limits(self) -> tuple[dict[str, str], dict[str, str]]:
        """`requests` and `limits`: at least one of them, and no request above its limit (Kubernetes refuses it)."""
        requests, limits = self.quantities("requests"), self.quantities("limits")
        if not requests and not limits:
            self.fail("", "needs requests or limits")
        for name, request in requests.items():
            limit = limits.get(name)
            if limit is not None and parse_quantity(request) > parse_quantity(limit):  # type: ignore[operator]
                self.fail(f"requests.{name}", f"{request} is more than the limit {limit}")
        return requests, limits
