"""Write core/schema/plan.schema.json from the plan's field declarations (core/plan.py), or check it.

    .venv/bin/python scripts/generate_schema.py          # rewrite the file
    .venv/bin/python scripts/generate_schema.py --check  # exit 1 when it differs (tests/core/test_schema.py too)
"""

import argparse
import sys
from pathlib import Path

from core.plan import schema_text

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "core/schema/plan.schema.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    check = parser.parse_args().check
    generated = schema_text()
    if not check:
        SCHEMA_PATH.write_text(generated)
        return 0
    if SCHEMA_PATH.read_text() != generated:
        print(f"{SCHEMA_PATH} differs from the declarations; run python scripts/generate_schema.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
