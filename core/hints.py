"""`rollbackHints`: manifest files next to the plan, or a few kubectl commands, checked before anything runs.

A hint comes from a pull request, so it is treated as hostile: a manifest path must stay inside the plan's
directory, and a command is split with shlex (never given to a shell) and accepted only for the verbs a rollback
needs (`rollout undo`, `apply -f`, `scale`, `delete hpa`), in the plan's own namespace.
"""

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from core.errors import InputError
from core.k8s import dns_label_problem
from core.safeyaml import load_documents, read_text

_SHELL_CHARACTERS = set(";|&$`<>(){}[]*?!#~\\\n\r'\"")
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/-]+$")
_WORKLOAD_ALIASES = {"deployment": "deployment", "deployments": "deployment", "deploy": "deployment",
                     "statefulset": "statefulset", "statefulsets": "statefulset", "sts": "statefulset"}
_HPA_ALIASES = {"hpa", "horizontalpodautoscaler", "horizontalpodautoscalers"}


@dataclass(frozen=True)
class ManifestHint:
    """A manifest file, relative to the plan's directory, and the objects it declares as (kind, name)."""

    path: str
    objects: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CommandHint:
    """A kubectl command, normalised to its argument list without the namespace flag."""

    text: str
    args: tuple[str, ...]


Hint = ManifestHint | CommandHint


def parse_hint(raw: Any, source: str, where: str, plan_dir: Path, namespace: str) -> Hint:
    if not isinstance(raw, str) or not raw.strip():
        raise InputError(source, where, "must be a manifest path or a kubectl command")
    text = raw.strip()
    if text.split()[0] == "kubectl":
        return _parse_command(text, source, where, plan_dir, namespace)
    if any(character.isspace() for character in text):
        raise InputError(source, where, f"{text!r} is neither a manifest path nor a kubectl command")
    return parse_manifest(text, source, where, plan_dir, namespace)


def parse_manifest(text: str, source: str, where: str, plan_dir: Path, namespace: str) -> ManifestHint:
    """A manifest path that resolves inside `plan_dir`, exists, and only declares objects in `namespace`."""
    if text.startswith("/"):
        raise InputError(source, where, f"{text!r} is an absolute path; give a path relative to the plan")
    if not _SAFE_PATH.match(text):
        raise InputError(source, where, f"{text!r} has characters not allowed in a manifest path")
    base = plan_dir.resolve()
    resolved = (base / text).resolve()
    if not resolved.is_relative_to(base):
        raise InputError(source, where, f"{text!r} points outside the plan's directory")
    if not resolved.is_file():
        raise InputError(source, where, f"{text!r} does not exist next to the plan")
    manifest_source = f"{source} ({where}: {text})"
    objects = []
    for index, document in enumerate(load_documents(read_text(resolved, manifest_source), manifest_source)):
        if document is None:
            continue
        field = f"document {index + 1}"
        metadata = document.get("metadata") if isinstance(document, Mapping) else None
        kind = document.get("kind") if isinstance(document, Mapping) else None
        if not isinstance(metadata, Mapping) or not isinstance(kind, str):
            raise InputError(manifest_source, field, "is not a Kubernetes object (needs kind and metadata)")
        problem = dns_label_problem(metadata.get("name"))
        if problem:
            raise InputError(manifest_source, f"{field}.metadata.name", problem)
        object_namespace = metadata.get("namespace", namespace)
        if object_namespace != namespace:
            raise InputError(manifest_source, f"{field}.metadata.namespace",
                             f"{object_namespace!r} is not the plan's namespace {namespace!r}")
        objects.append((kind, str(metadata["name"])))
    if not objects:
        raise InputError(manifest_source, "file", "declares no Kubernetes object")
    return ManifestHint(path=text, objects=tuple(objects))


class _Command:
    """The tokens of one hint command, consumed verb by verb."""

    def __init__(self, text: str, source: str, where: str, namespace: str) -> None:
        self.source, self.where = source, where
        bad = sorted(_SHELL_CHARACTERS.intersection(text))
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

    def count(self, flags: dict[str, str], flag: str) -> str:
        value = flags[flag]
        if not value.isdigit() or int(value) > 100_000:
            self.fail(f"{flag} must be a whole number, not {value!r}")
        return value

    def resource(self, positionals: list[str], aliases: Mapping[str, str]) -> str:
        if len(positionals) == 1 and "/" in positionals[0]:
            positionals = positionals[0].split("/", 1)
        if len(positionals) != 2 or positionals[0] not in aliases:
            self.fail(f"needs one resource of kind {', '.join(sorted(set(aliases.values())))}")
        return f"{aliases[positionals[0]]}/{self.name(positionals[1])}"


def _parse_command(text: str, source: str, where: str, plan_dir: Path, namespace: str) -> CommandHint:
    command = _Command(text, source, where, namespace)
    verb = command.tokens[:2]
    if verb == ["rollout", "undo"]:
        command.tokens = command.tokens[2:]
        positionals, flags = command.split({"--to-revision"})
        args = ["rollout", "undo", command.resource(positionals, _WORKLOAD_ALIASES)]
        if "--to-revision" in flags:
            args.append(f"--to-revision={command.count(flags, '--to-revision')}")
    elif verb[:1] == ["apply"]:
        command.tokens = command.tokens[1:]
        positionals, flags = command.split({"-f", "--filename"})
        path = flags.get("-f") or flags.get("--filename")
        if positionals or path is None or len(flags) != 1:
            command.fail("apply hints take exactly one manifest: kubectl apply -f FILE")
        args = ["apply", "-f", parse_manifest(path, source, where, plan_dir, namespace).path]
    elif verb[:1] == ["scale"]:
        command.tokens = command.tokens[1:]
        positionals, flags = command.split({"--replicas", "--current-replicas"})
        if "--replicas" not in flags:
            command.fail("scale hints need --replicas")
        args = ["scale", command.resource(positionals, _WORKLOAD_ALIASES),
                f"--replicas={command.count(flags, '--replicas')}"]
        if "--current-replicas" in flags:
            args.append(f"--current-replicas={command.count(flags, '--current-replicas')}")
    elif verb[:1] == ["delete"]:
        command.tokens = command.tokens[1:]
        positionals, _ = command.split(set())
        hpa = command.resource(positionals, {alias: "hpa" for alias in _HPA_ALIASES})
        args = ["delete", "hpa", hpa.split("/", 1)[1]]
    else:
        command.fail(f"kubectl {' '.join(verb) or '(nothing)'} is not allowed; hints may use rollout undo, "
                     "apply -f, scale and delete hpa")
    return CommandHint(text=text, args=tuple(args))
