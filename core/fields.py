"""Typed access to untrusted mappings, where every error names the file and the dotted field."""

from collections.abc import Mapping
from typing import Any, NoReturn

from core.errors import InputError
from core.k8s import dns_label_problem, parse_quantity, resource_name_problem


class Fields:
    """One mapping read from a file; `path` is its place in the document (e.g. `actions[2]`)."""

    def __init__(self, data: object, source: str, path: str, allowed: set[str]) -> None:
        self.source = source
        self.path = path
        if not isinstance(data, Mapping):
            self.fail("", f"must be a mapping, not {type_name(data)}")
        self.data: Mapping[str, Any] = data
        for key in data:
            if not isinstance(key, str) or key not in allowed:
                known = ", ".join(sorted(allowed))
                self.fail(str(key), f"unknown field (known: {known})")

    def where(self, key: str) -> str:
        if not key:
            return self.path or "document"
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, message: str) -> NoReturn:
        raise InputError(self.source, self.where(key), message)

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def string(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if value is None:
            self.fail(key, "is required")
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be a non-empty string, not {type_name(value)}")
        return value

    def optional_string(self, key: str) -> str | None:
        return self.string(key) if self.has(key) else None

    def name(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if value is None:
            self.fail(key, "is required")
        problem = dns_label_problem(value)
        if problem:
            self.fail(key, problem)
        assert isinstance(value, str)
        return value

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if value is None:
            self.fail(key, "is required")
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be a whole number, not {type_name(value)} {value!r}")
        if not low <= value <= high:
            self.fail(key, f"{value} is out of range ({low} to {high})")
        return value

    def optional_integer(self, key: str, low: int, high: int) -> int | None:
        return self.integer(key, low, high) if self.has(key) else None

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, not {type_name(value)}")
        return value

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(key, f"must be a mapping, not {type_name(value)}")
        return value

    def quantities(self, key: str) -> dict[str, str]:
        """`key` as {resource name: quantity text}, each checked ("250m", "1", "512Mi"; YAML numbers allowed)."""
        result: dict[str, str] = {}
        for name, value in self.mapping(key).items():
            problem = resource_name_problem(name)
            if problem:
                self.fail(f"{key}.{name}", problem)
            text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
            if not isinstance(text, str) or parse_quantity(text) is None:
                self.fail(f"{key}.{name}", f"{value!r} is not a Kubernetes quantity (e.g. 250m, 1, 512Mi)")
            result[name] = text
        return result

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

    def sequence(self, key: str, required: bool = False) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            if required:
                self.fail(key, "is required")
            return []
        if not isinstance(value, list):
            self.fail(key, f"must be a list, not {type_name(value)}")
        return value


def type_name(value: object) -> str:
    """A YAML-flavoured name for the type of `value`, for error messages."""
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "nothing"}
    for kind, label in names.items():
        if isinstance(value, kind):
            return label
    return type(value).__name__
