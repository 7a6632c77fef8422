"""`python -m agent ...`: see agent/cli.py."""

from agent.cli import main

raise SystemExit(main())
