"""`infra-apply`: preview or execute a plan."""

import sys

from cli.main import run


def main() -> None:
    sys.exit(run("apply", sys.argv[1:]))
