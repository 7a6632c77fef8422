"""`manage.py ad_agent ...`: the standalone on-prem agent (agent/), run from the portal's checkout.

A thin wrapper kept for operators who already run the agent this way: every argument goes to
`python -m agent` unchanged, and it behaves exactly as that does. The agent itself needs none of the
portal (no Django, no settings, no database driver): on a client's machine install agent/ alone
(agent/README.md).
"""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from agent.cli import main


class Command(BaseCommand):
    help = "The on-prem agent (same as `python -m agent`): read Active Directory and push it to the portal."

    def run_from_argv(self, argv: list[str]) -> None:
        # Django's own parser and options (--settings, --traceback, ...) mean nothing to the agent: hand it
        # the command line as typed after "ad_agent".
        sys.exit(main(argv[2:]))

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("args", nargs="*", help="The agent's arguments (python -m agent --help).")

    def handle(self, *args: str, **options: Any) -> None:
        status = main(list(args))
        if status:
            sys.exit(status)
