"""`infra-rollback`: preview or reverse what infra-apply did."""

import sys

from cli.main import run
from integrations.process import run_and_exit


def main() -> None:
    run_and_exit(lambda: run("rollback", sys.argv[1:]))
