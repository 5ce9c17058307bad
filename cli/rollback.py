"""`infra-rollback`: preview or reverse what infra-apply did."""

import sys

from cli.main import run


def main() -> None:
    sys.exit(run("rollback", sys.argv[1:]))
