"""Kubernetes naming and quantity rules, checked before anything reaches kubectl."""

import re
from decimal import Decimal, InvalidOperation

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(
    r"^(?P<number>[0-9]+(\.[0-9]*)?|\.[0-9]+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_RESOURCE_NAME = re.compile(
    r"^(cpu|memory|ephemeral-storage|hugepages-[A-Za-z0-9]+|[a-z0-9.-]+/[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$"
)
_SUFFIX_FACTOR: dict[str, Decimal] = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}

WORKLOAD_KINDS = {"Deployment": "deployment", "StatefulSet": "statefulset"}
"""Plan `kind` values and the kubectl resource names they map to."""


def dns_label_problem(value: object) -> str | None:
    """Why `value` is not an RFC 1123 DNS label (Kubernetes names and namespaces), or None."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > 63:
        return f"{value!r} is longer than 63 characters"
    if not _DNS_LABEL.match(value):
        return f"{value!r} is not a valid name (lowercase letters, digits and '-', RFC 1123 DNS label)"
    return None


def parse_quantity(value: str) -> Decimal | None:
    """The numeric value of a Kubernetes quantity ("250m", "1Gi", "0.5"), or None when it is not one."""
    match = _QUANTITY.match(value)
    if not match:
        return None
    suffix = match["suffix"] or ""
    try:
        number = Decimal(match["number"])
        if suffix[:1] in ("e", "E"):
            return number * (Decimal(10) ** int(suffix[1:]))
        return number * _SUFFIX_FACTOR[suffix]
    except (InvalidOperation, ValueError, KeyError):
        return None


def resource_name_problem(name: object) -> str | None:
    """Why `name` is not a container resource name (cpu, memory, vendor.com/gpu, ...), or None."""
    if not isinstance(name, str) or not _RESOURCE_NAME.match(name):
        return f"{name!r} is not a resource name (cpu, memory, ephemeral-storage or domain/name)"
    return None
