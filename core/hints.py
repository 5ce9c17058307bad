"""`rollbackHints`: manifest files next to the plan, or a few kubectl commands, checked before anything runs.

A hint comes from a pull request, so it is treated as hostile: a manifest path must stay inside the plan's
directory and its file must hold exactly one HorizontalPodAutoscaler for one of the plan's workloads (the same
rule as an `apply_hpa` manifest: `kubectl apply -f` would create whatever else it declared), and a command is
split with shlex (never given to a shell) and accepted only for the verbs a rollback needs (`rollout undo`,
`apply -f`, `scale`, `delete hpa`), in the plan's own namespace.
"""

import json
import re
import shlex
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from core.errors import InputError
from core.fields import NAME, Anything, Choice, Field, Integer, Items, Record, Schema, anchored, type_name
from core.k8s import (
    MAX_INT32,
    MAX_REPLICAS,
    WORKLOAD_KINDS,
    Kind,
    Workload,
    decimal_integer,
    dns_label_problem,
    shown,
)
from core.safeyaml import decode, load_documents, read_bytes

_SHELL_CHARACTERS = ";|&$`<>(){}[]*?!#~\\\n\r'\""
SAFE_PATH_PATTERN = "[A-Za-z0-9._-][A-Za-z0-9._/-]{0,254}"
"""A path relative to the plan, in characters no shell or kubectl reads specially."""
MAX_REVISION = 2**63 - 1
HINT_VERBS = ("rollout undo", "apply", "scale", "delete")
HPA_KIND = Kind.HPA.value
_WORKLOAD_ALIASES = {"deployment": "deployment", "deployments": "deployment", "deploy": "deployment",
                     "statefulset": "statefulset", "statefulsets": "statefulset", "sts": "statefulset"}
_HPA_ALIASES = {Kind.HPA.resource, Kind.HPA.value.lower(), Kind.HPA.plural}


@dataclass(frozen=True)
class ManifestHint:
    """A manifest file, relative to the plan's directory, and the objects it declares as (kind, name).

    `data` is the file's bytes as read once (the gate compares their blob SHA with the PR's), `body` the object
    validated from them as JSON: what kubectl receives on stdin, so no other parser reads the file."""

    path: str
    objects: tuple[tuple[str, str], ...]
    body: str = ""
    data: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class CommandHint:
    """A kubectl command, normalised to its argument list without the namespace flag; `manifest` is the file an
    `apply -f` hint applies."""

    text: str
    args: tuple[str, ...]
    manifest: ManifestHint | None = None


Hint = ManifestHint | CommandHint


def parse_hint(raw: Any, source: str, where: str, plan_dir: Path, namespace: str,
               workloads: Collection[Workload], hpas: Collection[str] = ()) -> Hint:
    """One rollback hint; it acts only on the plan's own objects: a manifest must be an HPA for one of `workloads`,
    a command may scale or undo only those, and delete only the plan's HPAs (`hpas`, or one named after a
    workload)."""
    if not isinstance(raw, str) or not raw.strip():
        raise InputError(source, where, "must be a manifest path or a kubectl command")
    text = raw.strip()
    if text.split()[0] == "kubectl":
        return _parse_command(text, source, where, plan_dir, namespace, workloads,
                              {*hpas, *(workload.name for workload in workloads)})
    if any(character.isspace() for character in text):
        raise InputError(source, where, f"{shown(text)} is neither a manifest path nor a kubectl command")
    return parse_manifest(text, source, where, plan_dir, namespace, workloads)


def manifest_path_problem(value: object) -> str | None:
    """Why `value` is not a manifest path relative to the plan (the plan's directory is checked on reading)."""
    if not isinstance(value, str) or not value:
        return "must be a manifest path"
    if value.startswith("/"):
        return f"{shown(value)} is an absolute path; give a path relative to the plan"
    if not re.fullmatch(SAFE_PATH_PATTERN, value):
        return f"{shown(value)} is not a manifest path (letters, digits and '._/-', at most 255 characters)"
    return None


def parse_manifest(text: str, source: str, where: str, plan_dir: Path, namespace: str,
                   workloads: Collection[Workload], hpa_name: str | None = None) -> ManifestHint:
    """A manifest path inside `plan_dir` whose file holds exactly one HorizontalPodAutoscaler in `namespace`,
    named `hpa_name` (when given) and scaling one of `workloads`."""
    problem = manifest_path_problem(text)
    if problem:
        raise InputError(source, where, problem)
    base = plan_dir.resolve()
    resolved = (base / text).resolve()
    if not resolved.is_relative_to(base):
        raise InputError(source, where, f"{shown(text)} points outside the plan's directory")
    if not resolved.is_file():
        raise InputError(source, where, f"{shown(text)} does not exist next to the plan")
    manifest_source = f"{source} ({where}: {text})"
    data = read_bytes(resolved, manifest_source)
    documents = [doc for doc in load_documents(decode(data, manifest_source), manifest_source) if doc is not None]
    if len(documents) != 1:
        found = "is empty" if not documents else f"holds {len(documents)} YAML documents"
        raise InputError(manifest_source, "file", f"{found}; a manifest holds exactly one HorizontalPodAutoscaler")
    name = _check_hpa(documents[0], manifest_source, namespace, workloads, hpa_name)
    return ManifestHint(path=text, objects=((HPA_KIND, name),), body=json.dumps(documents[0], sort_keys=True),
                        data=data)


def _check_hpa(document: Any, source: str, namespace: str, workloads: Collection[Workload],
               hpa_name: str | None) -> str:
    """The HPA's name, once the document is shown to be one HPA as the plan needs it; InputError otherwise."""
    if not isinstance(document, Mapping):
        raise InputError(source, "document", f"{type_name(document)} is not a Kubernetes object; "
                                             f"a manifest holds exactly one {HPA_KIND}")
    kind = document.get("kind")
    if kind != HPA_KIND:
        what = "a missing kind" if kind is None else shown(kind)
        raise InputError(source, "kind", f"{what} is not allowed: a manifest holds exactly one {HPA_KIND}")
    hpa = _HPA.open(document, source, "")
    metadata = hpa.nested("metadata")
    name = metadata.string("name")
    if hpa_name is not None and name != hpa_name:
        metadata.fail("name", f"{shown(name)} is not the action's HPA {shown(hpa_name)}")
    given_namespace = metadata.optional_string("namespace")
    if given_namespace is not None and given_namespace != namespace:
        metadata.fail("namespace", f"{shown(given_namespace)} is not the plan's namespace {shown(namespace)}")
    spec_record = _HPA_V1_SPEC if hpa.string("apiVersion") == "autoscaling/v1" else _HPA_V2_SPEC
    spec = spec_record.open(document["spec"], source, "spec")
    target_fields = spec.nested("scaleTargetRef")
    target = Workload(target_fields.string("kind"), target_fields.string("name"))
    if target not in workloads:
        known = ", ".join(sorted(item.ref for item in workloads)) or "none"
        whose = "the action's workload" if hpa_name is not None else "one of the plan's workloads"
        spec.fail("scaleTargetRef", f"{target.kind} {shown(target.name)} is not {whose} ({known})")
    low, high = spec.integer("minReplicas"), spec.integer("maxReplicas")
    if low > high:
        spec.fail("minReplicas", f"{low} is more than maxReplicas {high}")
    return name


HPA_REPLICAS = Integer(1, MAX_REPLICAS)
_TARGET_REF = Record({
    "apiVersion": Field(Choice(("apps/v1",)), required=True),
    "kind": Field(Choice(tuple(WORKLOAD_KINDS)), required=True),
    "name": Field(NAME, required=True),
})
_HPA_V2_SPEC = Record({
    "scaleTargetRef": Field(_TARGET_REF, required=True),
    "minReplicas": Field(HPA_REPLICAS, default=1),
    "maxReplicas": Field(HPA_REPLICAS, required=True),
    "metrics": Field(Items({"type": "object"}, 32)),
    "behavior": Field(Anything()),
})
_HPA_V1_SPEC = Record({
    "scaleTargetRef": Field(_TARGET_REF, required=True),
    "minReplicas": Field(HPA_REPLICAS, default=1),
    "maxReplicas": Field(HPA_REPLICAS, required=True),
    "targetCPUUtilizationPercentage": Field(Integer(1, MAX_INT32)),
})
_HPA = Record({
    "kind": Field(Choice((HPA_KIND,)), required=True),
    "apiVersion": Field(Choice(("autoscaling/v2", "autoscaling/v1")), required=True),
    "metadata": Field(Record({
        "name": Field(NAME, required=True),
        "namespace": Field(NAME),
        "labels": Field(Anything()),
        "annotations": Field(Anything()),
    }), required=True),
    "spec": Field(Anything(), required=True),  # checked as autoscaling/v2 or v1 once apiVersion is known
})
"""An HPA manifest: autoscaling/v2, or v1 (the API server converts it); what the preview states is checked
here (name, namespace, target, bounds), the rest of the spec by the API server's own validation."""


def hint_schema() -> Schema:
    """What an editor can check of a hint: a relative manifest path, or an allowed kubectl verb without shell
    characters."""
    verbs = "|".join(verb.replace(" ", "\\s+") for verb in HINT_VERBS)
    no_shell = "".join(f"\\u{ord(character):04x}" for character in _SHELL_CHARACTERS)
    return {"type": "string", "anyOf": [  # space around either is allowed: the loader strips it
        {"pattern": anchored(f"\\s*({SAFE_PATH_PATTERN})\\s*")},
        {"pattern": anchored(f"\\s*kubectl\\s+({verbs})\\s[^{no_shell}]*")},
    ]}


class _Command:
    """The tokens of one hint command, consumed verb by verb."""

    def __init__(self, text: str, source: str, where: str, namespace: str) -> None:
        self.source, self.where = source, where
        bad = sorted(set(_SHELL_CHARACTERS).intersection(text))
        if bad:
            self.fail(f"shell characters {''.join(bad)!r} are not allowed in a hint command")
        self.tokens = self._without_namespace(shlex.split(text)[1:], namespace)

    def _without_namespace(self, tokens: list[str], namespace: str) -> list[str]:
        """Drop `-n NS` / `--namespace=NS` wherever they stand; NS must be the plan's namespace."""
        rest: list[str] = []
        items = iter(tokens)
        for token in items:
            name, has_value, value = token.partition("=")
            if name not in ("-n", "--namespace"):
                rest.append(token)
                continue
            given = value if has_value else next(items, "")
            if given != namespace:
                self.fail(f"namespace {given!r} is not the plan's namespace {namespace!r}")
        return rest

    def fail(self, message: str) -> NoReturn:
        raise InputError(self.source, self.where, message)

    def split(self, value_flags: set[str]) -> tuple[list[str], dict[str, str]]:
        """Positionals and `--flag value` pairs, accepting only `value_flags`."""
        positionals: list[str] = []
        flags: dict[str, str] = {}
        tokens = iter(self.tokens)
        for token in tokens:
            if not token.startswith("-"):
                positionals.append(token)
                continue
            name, has_value, value = token.partition("=")
            if name not in value_flags:
                self.fail(f"flag {name!r} is not allowed in a hint command")
            if not has_value:
                value = next(tokens, "")
            if not value:
                self.fail(f"flag {name!r} needs a value")
            flags[name] = value
        return positionals, flags

    def name(self, value: str) -> str:
        problem = dns_label_problem(value)
        if problem:
            self.fail(problem)
        return value

    def count(self, flags: dict[str, str], flag: str, high: int) -> str:
        value = flags[flag]
        if decimal_integer(value, 0, high) is None:
            self.fail(f"{flag} must be a whole number from 0 to {high}, not {shown(value)}")
        return value

    def resource(self, positionals: list[str], aliases: Mapping[str, str]) -> str:
        if len(positionals) == 1 and "/" in positionals[0]:
            positionals = positionals[0].split("/", 1)
        if len(positionals) != 2 or positionals[0] not in aliases:
            self.fail(f"needs one resource of kind {', '.join(sorted(set(aliases.values())))}")
        return f"{aliases[positionals[0]]}/{self.name(positionals[1])}"

    def workload(self, positionals: list[str], workloads: Collection[Workload]) -> str:
        """A `deployment/x` or `statefulset/x` the plan itself names."""
        ref = self.resource(positionals, _WORKLOAD_ALIASES)
        if not any(workload.ref == ref for workload in workloads):
            known = ", ".join(sorted(workload.ref for workload in workloads)) or "none"
            self.fail(f"{ref} is not one of the plan's workloads ({known}); a hint acts only on those")
        return ref


def _parse_command(text: str, source: str, where: str, plan_dir: Path, namespace: str,
                   workloads: Collection[Workload], hpas: Collection[str]) -> CommandHint:
    command = _Command(text, source, where, namespace)
    verb = command.tokens[:2]
    if verb == ["rollout", "undo"]:
        command.tokens = command.tokens[2:]
        positionals, flags = command.split({"--to-revision"})
        args = ["rollout", "undo", command.workload(positionals, workloads)]
        if "--to-revision" in flags:
            args.append(f"--to-revision={command.count(flags, '--to-revision', MAX_REVISION)}")
    elif verb[:1] == ["apply"]:
        command.tokens = command.tokens[1:]
        positionals, flags = command.split({"-f", "--filename"})
        path = flags.get("-f") or flags.get("--filename")
        if positionals or path is None or len(flags) != 1:
            command.fail("apply hints take exactly one manifest: kubectl apply -f FILE")
        manifest = parse_manifest(path, source, where, plan_dir, namespace, workloads)
        return CommandHint(text=text, args=("apply", "-f", manifest.path), manifest=manifest)
    elif verb[:1] == ["scale"]:
        command.tokens = command.tokens[1:]
        positionals, flags = command.split({"--replicas", "--current-replicas"})
        if "--replicas" not in flags:
            command.fail("scale hints need --replicas")
        args = ["scale", command.workload(positionals, workloads),
                f"--replicas={command.count(flags, '--replicas', MAX_REPLICAS)}"]
        if "--current-replicas" in flags:
            args.append(f"--current-replicas={command.count(flags, '--current-replicas', MAX_REPLICAS)}")
    elif verb[:1] == ["delete"]:
        command.tokens = command.tokens[1:]
        positionals, _ = command.split(set())
        hpa = command.resource(positionals, {alias: "hpa" for alias in _HPA_ALIASES}).split("/", 1)[1]
        if hpa not in hpas:
            command.fail(f"hpa/{hpa} is not one of the plan's HPAs ({', '.join(sorted(hpas)) or 'none'}); a hint "
                         "acts only on those")
        args = ["delete", "hpa", hpa]
    else:
        command.fail(f"kubectl {' '.join(verb) or '(nothing)'} is not allowed; hints may use rollout undo, "
                     "apply -f, scale and delete hpa")
    return CommandHint(text=text, args=tuple(args))
