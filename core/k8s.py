"""Kubernetes naming, integer and quantity rules, checked before anything reaches kubectl.

Every pattern here is matched in full (`re.fullmatch`): `$` would also match before a final newline. The
pattern texts are also what the JSON Schema for editors carries (anchored there as `^(...)$`), so they use only
syntax that Python and ECMA-262 read alike.
"""

import re
from dataclasses import dataclass
from decimal import Decimal, localcontext
from enum import StrEnum

DNS_LABEL_PATTERN = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
MAX_NAME_LENGTH = 63
CONTEXT_PATTERN = "[A-Za-z0-9_][A-Za-z0-9_.@:/-]{0,252}"
"""A kubeconfig context name as kubectl spells them (`kind-dev`, `gke_p_zone_c`, `arn:aws:eks:...:cluster/c`);
never a flag (`-...`), never whitespace."""
DECIMAL_PATTERN = "0|-?[1-9][0-9]{0,18}"
"""A plain ASCII decimal integer that fits in 64 bits: no sign prefix, base prefix, underscore or leading zero."""
_NUMBER = "[0-9]{1,20}(\\.[0-9]{0,9})?|\\.[0-9]{1,9}"
_SUFFIX = "Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][-+]?[0-9]{1,2}"
QUANTITY_PATTERN = f"({_NUMBER})({_SUFFIX})?"
"""A Kubernetes quantity, bounded in length: at most 20 digits, 9 decimals (nano precision) and a 2-digit exponent."""
_DNS_SUBDOMAIN = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
RESOURCE_NAME_PATTERN = (
    f"cpu|memory|ephemeral-storage|hugepages-({_NUMBER})({_SUFFIX})?|{_DNS_SUBDOMAIN}/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
)
"""A container resource: a standard one, or an extended one qualified by its vendor's domain (`nvidia.com/gpu`)."""
MAX_RESOURCE_NAME_LENGTH = 253
MAX_INT32 = 2**31 - 1
MAX_REPLICAS = 10_000
"""The project's bound for replicas and HPA bounds, stricter than the API's int32."""
MAX_QUANTITY = Decimal(2**63 - 1)
"""The largest quantity Kubernetes keeps exactly (an int64 of base units)."""
SHOWN_LENGTH = 60

_SUFFIX_FACTOR: dict[str, Decimal] = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}


class Kind(StrEnum):
    """The kinds a run reads and changes, as the API's `kind` spells them, with the names kubectl and the API
    give them."""

    DEPLOYMENT = "Deployment"
    STATEFULSET = "StatefulSet"
    HPA = "HorizontalPodAutoscaler"

    @property
    def plural(self) -> str:
        """The API resource (`kubectl get deployments,statefulsets,horizontalpodautoscalers`)."""
        return f"{self.value.lower()}s"

    @property
    def group(self) -> str:
        return "autoscaling" if self is Kind.HPA else "apps"

    @property
    def api_version(self) -> str:
        return f"{self.group}/v2" if self is Kind.HPA else f"{self.group}/v1"

    @property
    def resource(self) -> str:
        """kubectl's name in a `resource/name` reference (`deployment/web`, `hpa/web`)."""
        return "hpa" if self is Kind.HPA else self.value.lower()


WORKLOAD_KINDS = (Kind.DEPLOYMENT, Kind.STATEFULSET)
"""The plan's `kind` values."""


@dataclass(frozen=True)
class Workload:
    """A Deployment or StatefulSet in the plan's namespace."""

    kind: str
    name: str

    @property
    def ref(self) -> str:
        """kubectl's `resource/name` form, e.g. `deployment/web`."""
        return f"{Kind(self.kind).resource}/{self.name}"


_QUANTITY = re.compile(f"(?P<number>{_NUMBER})(?P<suffix>{_SUFFIX})?")


def shown(value: object) -> str:
    """`value` as an error message quotes it: repr (so a newline cannot start a second line), cut to a length
    a terminal line can hold."""
    text = repr(value)
    if len(text) <= SHOWN_LENGTH:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{text[:SHOWN_LENGTH]}...{size}"


def dns_label_problem(value: object) -> str | None:
    """Why `value` is not an RFC 1123 DNS label (Kubernetes names and namespaces), or None."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > MAX_NAME_LENGTH:
        return f"{shown(value)} is longer than {MAX_NAME_LENGTH} characters"
    if not re.fullmatch(DNS_LABEL_PATTERN, value):
        return f"{shown(value)} is not a valid name (lowercase letters, digits and '-', RFC 1123 DNS label)"
    return None


def context_problem(value: object) -> str | None:
    """Why `value` is not a kube context name, or None."""
    if not isinstance(value, str) or not re.fullmatch(CONTEXT_PATTERN, value):
        return f"{shown(value)} is not a kube context name"
    return None


def decimal_integer(text: str, low: int, high: int) -> int | None:
    """`text` as an integer when it is plain ASCII decimal within [low, high], else None.

    `str.isdigit` and `int` accept Unicode digits (fullwidth, Arabic-Indic), and `int` of a 5,000-digit string
    raises; the pattern admits neither.
    """
    if not re.fullmatch(DECIMAL_PATTERN, text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def parse_quantity(value: str) -> Decimal | None:
    """The numeric value of a Kubernetes quantity ("250m", "1Gi", "0.5"), or None when it is not one or is
    beyond what Kubernetes keeps (MAX_QUANTITY)."""
    match = _QUANTITY.fullmatch(value)
    if not match:
        return None
    suffix = match["suffix"] or ""
    with localcontext() as context:
        context.prec = 60  # 20 digits times 2**60 or 10**99, exactly
        number = Decimal(match["number"])
        factor = _SUFFIX_FACTOR.get(suffix) or Decimal(10) ** int(suffix[1:])  # "E" and "Ei" are units, "E3" not
        result = number * factor
    return result if result <= MAX_QUANTITY else None


def resource_name_problem(name: object) -> str | None:
    """Why `name` is not a container resource name (cpu, memory, vendor.com/gpu, ...), or None."""
    if (not isinstance(name, str) or len(name) > MAX_RESOURCE_NAME_LENGTH
            or not re.fullmatch(RESOURCE_NAME_PATTERN, name)):
        return f"{shown(name)} is not a resource name (cpu, memory, ephemeral-storage or domain/name)"
    return None
