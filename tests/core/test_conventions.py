"""Each name family has one home, core.conventions (and core.k8s.Kind for the kinds): product code spells none of
them as a literal. The repository pattern takes what GitHub takes."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.conventions import (
    BRANCH_PREFIX,
    DEFAULT_PLANS_DIR,
    LEASE_NAME,
    LOCK_LIMIT_PREFIX,
    RECORD_NAME_PREFIX,
    REPOSITORY_PATTERN,
    STAMP_FIELD_MANAGER,
    Env,
)
from core.k8s import Kind

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("core", "cli", "flows", "tasks", "integrations", "deployments")
HOMES = {REPO / "core" / "conventions.py", REPO / "core" / "k8s.py"}
WIRE_PREFIXES = ("infra-orchestrator/", "infra-orchestrator.io/", "<!-- infra-", "infra-target-", DEFAULT_PLANS_DIR)
"""Annotation and label prefixes, the PR comments' hidden markers, the plans directory."""
NAMED = {Kind.HPA.value, Kind.HPA.plural, LEASE_NAME, STAMP_FIELD_MANAGER, RECORD_NAME_PREFIX, LOCK_LIMIT_PREFIX,
         BRANCH_PREFIX, *(name.value for name in Env if name.startswith("INFRA_"))}
"""Literals that have a name: the HPA kind and its plural, the names of the objects a run writes, the branch
prefix, the project's environment variables."""


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of string constants that are documentation: any string statement (module, class, function and
    attribute docstrings)."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}


def literals(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
            yield node.lineno, node.value


def spelled_out(text: str) -> bool:
    return text in NAMED or any(prefix in text for prefix in WIRE_PREFIXES)


def test_product_code_spells_no_named_literal() -> None:
    found = [f"{path.relative_to(REPO)}:{line}: {text!r}"
             for package in PRODUCT for path in sorted((REPO / package).rglob("*.py")) if path not in HOMES
             for line, text in literals(path) if spelled_out(text)]

    assert not found, "use the name in core.conventions (or core.k8s.Kind):\n" + "\n".join(found)


@pytest.mark.parametrize("text", ['x = "infra-orchestrator/plan"', 'x = f"<!-- infra-orchestrator:{flow} -->"',
                                  'x = "HorizontalPodAutoscaler"', 'x = env.get("INFRA_KUBECTL_TIMEOUT")',
                                  'x = {"infra-orchestrator.io/record": name}'])
def test_the_check_finds_each_family(tmp_path: Path, text: str) -> None:
    source = tmp_path / "module.py"
    source.write_text(f'"""A module that spells out infra-orchestrator/ in its docstring."""\n{text}\n')

    assert [value for _, value in literals(source) if spelled_out(value)]


@pytest.mark.parametrize("name", ["acme/infra", "my-org/infra", "acme/my_repo.v2", "acme/.github", "a/b", "A1/x-"])
def test_a_repository_github_allows_is_matched(name: str) -> None:
    assert REPOSITORY_PATTERN.fullmatch(name)


@pytest.mark.parametrize("name", ["acme_corp/infra", "acme.io/infra", "-acme/infra", "acme/..", "acme/.",
                                  "acme/infra/x", "acme", "acme/infra\n", "/infra", "acme/"])
def test_a_repository_github_refuses_is_not(name: str) -> None:
    assert not REPOSITORY_PATTERN.fullmatch(name)
