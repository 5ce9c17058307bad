"""Every third-party module the project imports is declared in pyproject.toml: product code (the packages it
installs) in `dependencies`, tests, bench and scripts in `dependencies` or the `test` extra. An import of an
installed but undeclared distribution (one that only arrives as another package's dependency) fails here."""

import ast
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PRODUCT = tuple(name.rstrip("*") for name in PROJECT["tool"]["setuptools"]["packages"]["find"]["include"])
TEST_ONLY = ("tests", "bench", "scripts")
FIRST_PARTY = {*PRODUCT, *TEST_ONLY}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(requirements: Iterable[str]) -> set[str]:
    return {canonical(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)[0])  # type: ignore[index]
            for requirement in requirements}


MAIN = declared(PROJECT["project"]["dependencies"])
TEST = MAIN | declared(PROJECT["project"]["optional-dependencies"]["test"])


def imports(source: str) -> Iterator[str]:
    """The top-level module of every absolute import, wherever it is (inside functions too: lazy imports)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def undeclared(directories: Iterable[str], allowed: set[str]) -> list[str]:
    """`<file>: <module> (<distribution>)` for each import of a third-party module not declared in `allowed`."""
    distributions = packages_distributions()
    problems = []
    for directory in directories:
        for path in sorted((ROOT / directory).rglob("*.py")):
            for module in sorted(set(imports(path.read_text()))):
                if module in sys.stdlib_module_names or module in FIRST_PARTY or module == "__future__":
                    continue
                names = distributions.get(module, [])
                if not any(canonical(name) in allowed for name in names):
                    problems.append(f"{path.relative_to(ROOT)}: {module} ({', '.join(names) or 'not installed'})")
    return problems


def test_every_import_of_the_product_is_a_declared_dependency() -> None:
    assert undeclared(PRODUCT, MAIN) == []


def test_every_import_of_the_tests_bench_and_scripts_is_declared_for_them() -> None:
    assert undeclared(TEST_ONLY, TEST) == []


def test_an_undeclared_import_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "product").mkdir()
    (tmp_path / "product" / "module.py").write_text("import os\n\ndef lazy():\n    import starlette.routing\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert undeclared(["product"], MAIN - {"starlette"}) == ["product/module.py: starlette (starlette)"]
    assert undeclared(["product"], MAIN) == []
