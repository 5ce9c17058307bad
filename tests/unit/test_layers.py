"""Layers point one way: cli -> flows -> tasks -> integrations -> core, with deployments/ beside cli and bench/
on its own harness. Every import counts, those inside functions and under TYPE_CHECKING too."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "core": {"integrations", "tasks", "flows", "cli", "deployments", "bench"},
    "integrations": {"tasks", "flows", "cli", "deployments", "bench"},
    "tasks": {"flows", "cli", "deployments", "bench"},
    "flows": {"cli", "deployments", "bench"},
    "cli": {"deployments", "bench"},
    "deployments": {"cli", "bench"},
    "bench": {"cli"},
}
"""For each package, the packages none of its modules may import."""


def imported(source: str) -> Iterator[tuple[int, str]]:
    """(line, top-level package) of every absolute import in the source."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def violations(root: Path) -> list[str]:
    found = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((root / package).rglob("*.py")):
            found += [f"{path.relative_to(root)}:{line} imports {target}"
                      for line, target in imported(path.read_text()) if target in forbidden]
    return found


def test_every_import_points_down_the_layers() -> None:
    assert violations(ROOT) == []


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("core/late.py", "def f() -> None:\n    from tasks.kube import TaskCluster\n", "core/late.py:2 imports tasks"),
    ("core/typed.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import integrations.github\n",
     "core/typed.py:3 imports integrations"),
    ("integrations/up.py", "from flows.shared import execution\n", "integrations/up.py:1 imports flows"),
    ("tasks/up.py", "import cli.execute\n", "tasks/up.py:1 imports cli"),
    ("flows/up.py", "from cli import main\n", "flows/up.py:1 imports cli"),
    ("deployments/up.py", "from cli.args import parse\n", "deployments/up.py:1 imports cli"),
    ("bench/up.py", "from cli.demo import demo\n", "bench/up.py:1 imports cli"),
])
def test_an_import_up_the_layers_is_found(tmp_path: Path, module: str, source: str, expected: str) -> None:
    path = tmp_path / module
    path.parent.mkdir(parents=True)
    path.write_text(source)

    assert violations(tmp_path) == [expected]
