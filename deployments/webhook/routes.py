"""Which repositories the bridge serves, and where each keeps its plans: the routes file or the environment."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.conventions import DEFAULT_PLANS_DIR, PLAN_FILE, REPOSITORY_PATTERN, Env

DEFAULT_PLAN_TEMPLATE = f"{DEFAULT_PLANS_DIR}/{{target}}/{PLAN_FILE}"
TARGET_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class ConfigError(ValueError):
    """Bad configuration, shown as the one line ``error: <where>: <field>: <message>``."""

    def __init__(self, where: str, name: str, message: str) -> None:
        super().__init__(f"{where}: {name}: {message}")


@dataclass(frozen=True)
class RepoRoute:
    targets: tuple[str, ...] | None = None
    plan: str = DEFAULT_PLAN_TEMPLATE


def _repository_name(where: str, name: str, value: object) -> str:
    text = str(value).strip()
    if not REPOSITORY_PATTERN.fullmatch(text):
        raise ConfigError(where, name, f"{text!r} is not owner/name")
    return text


@dataclass(frozen=True)
class Routes:
    """The repositories this bridge serves (keys, lower-cased) and how each routes a PR."""

    repos: Mapping[str, RepoRoute]

    @classmethod
    def for_repositories(cls, names: Sequence[str]) -> Routes:
        return cls({name.lower(): RepoRoute() for name in names})

    @classmethod
    def load(cls, path: str | Path) -> Routes:
        import yaml

        where = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise ConfigError(where, "(file)", f"cannot be read as YAML ({type(error).__name__})") from None
        repos_spec = data.get("repos") if isinstance(data, dict) else None
        if not isinstance(repos_spec, dict) or not repos_spec:
            raise ConfigError(where, "repos", "must map at least one owner/name to its routing")
        repos: dict[str, RepoRoute] = {}
        for name, spec in repos_spec.items():
            field_name = f"repos.{name}"
            repository = _repository_name(where, field_name, name)
            spec = spec if spec is not None else {}
            if not isinstance(spec, dict):
                raise ConfigError(where, field_name, "must be a mapping")
            targets = spec.get("targets")
            if targets is not None and not (
                isinstance(targets, list) and all(isinstance(t, str) and TARGET_RE.fullmatch(t) for t in targets)
            ):
                raise ConfigError(where, f"{field_name}.targets", "must be a list of target names")
            repos[repository.lower()] = RepoRoute(
                targets=tuple(targets) if targets is not None else None,
                plan=str(spec.get("plan", DEFAULT_PLAN_TEMPLATE)),
            )
        return cls(repos)

    @classmethod
    def from_config(cls, routes_file: str | None, env: Mapping[str, str]) -> Routes:
        """The routes file, else ``INFRA_REPOSITORIES``, else ``GH_OWNER``/``GH_REPO``: never "any repository"."""
        listed = env.get(Env.REPOSITORIES, "").strip()
        if routes_file and listed:
            raise ConfigError("environment", Env.REPOSITORIES, "set it or a routes file, not both")
        if routes_file:
            return cls.load(routes_file)
        if listed:
            names = [part for part in (p.strip() for p in listed.split(",")) if part]
            return cls.for_repositories([_repository_name("environment", Env.REPOSITORIES, n) for n in names])
        owner, repo = env.get("GH_OWNER", "").strip(), env.get("GH_REPO", "").strip()
        if owner and repo:
            return cls.for_repositories([_repository_name("environment", "GH_OWNER/GH_REPO", f"{owner}/{repo}")])
        raise ConfigError(
            "environment", "GH_OWNER", "set GH_OWNER and GH_REPO, INFRA_REPOSITORIES or a routes file "
            "(the bridge serves only repositories it is configured for)"
        )  # fmt: skip

    def served(self) -> list[str]:
        return sorted(self.repos)

    def plans(self, repository: str, files: Sequence[str]) -> list[tuple[str, str]] | str:
        """(target, plan path) of every plan file among `files` (the PR's changed paths), or the reason there is
        none. ``repository`` must be served."""
        spec = self.repos[repository.lower()]
        before, _, after = spec.plan.partition("{target}")
        found: list[tuple[str, str]] = []
        for path in files:
            if not (path.startswith(before) and path.endswith(after) and len(path) > len(before) + len(after)):
                continue
            target = path[len(before) : len(path) - len(after)]
            if TARGET_RE.fullmatch(target) and (spec.targets is None or target in spec.targets):
                found.append((target, path))
        if not found:
            return f"the PR changes no plan file ({spec.plan})"
        return sorted(set(found))
