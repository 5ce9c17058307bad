"""`infra-apply`: preview or execute a plan."""

import sys

from cli.main import run
from integrations.process import run_and_exit


def main() -> None:
    run_and_exit(lambda: run("apply", sys.argv[1:]))
