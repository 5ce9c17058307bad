"""The unit suite runs the pure core with in-memory stand-ins: it must need no Prefect at all (neither its tests
nor the fixtures every test loads), so that it stays a few seconds long."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCKER = """\
import sys


class _NoPrefect:
    def find_spec(self, name, path=None, target=None):
        if name == "prefect" or name.startswith("prefect."):
            raise ImportError(f"prefect blocked: {name}")
        return None


sys.meta_path.insert(0, _NoPrefect())
"""


def run_unit_suite(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """tests/unit (or `args`) in a Python where `import prefect` raises."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_unit_suite_runs_without_prefect(tmp_path: Path) -> None:
    ran = run_unit_suite(tmp_path, "tests/unit")

    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert " passed" in ran.stdout.splitlines()[-1]


def test_the_blocker_catches_a_test_that_imports_prefect(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "test_probe.py").write_text("def test_imports_prefect() -> None:\n    import prefect  # noqa: F401\n")

    ran = run_unit_suite(tmp_path, "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"), str(probe))

    assert ran.returncode == 1 and "prefect blocked: prefect" in ran.stdout, ran.stdout[-3000:]
