"""Kubernetes resource quantities (``100m``, ``1.5Gi``, ``2e3``): syntax as kube-apiserver checks it, and values
for comparisons (requests <= limits, does a pod fit on the node)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_SYNTAX = re.compile(QUANTITY_PATTERN)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_SUFFIXED = re.compile(r"^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][-+]?[0-9]+)?$")


class QuantityError(ValueError):
    """The text is not a quantity; the message is kube-apiserver's."""

    def __init__(self) -> None:
        super().__init__(f"quantities must match the regular expression '{QUANTITY_PATTERN}'")


def parse(text: str) -> Decimal:
    """The value of a quantity in base units (cores, bytes)."""
    match = _SUFFIXED.match(text) if _SYNTAX.match(text) else None
    if match is None:
        raise QuantityError()
    number, suffix = match.group(1), match.group(2) or ""
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise QuantityError() from None
    if suffix in _BINARY:
        return value * _BINARY[suffix]
    if suffix[:1] in ("e", "E"):
        return value * Decimal(10) ** int(suffix[1:])
    return value * _DECIMAL[suffix]


def is_quantity(value: object) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True
    if not isinstance(value, str):
        return False
    try:
        parse(value)
    except QuantityError:
        return False
    return True


def value_of(value: object) -> Decimal:
    """A quantity given as JSON (string or number)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    return parse(str(value))
