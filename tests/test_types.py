"""The house's types (issue 18, move 8): mypy with django-stubs passes on the apps, as `make lint` and CI run it.

What it checks, and where it is strict, is [tool.mypy] in pyproject.toml. Its cache (var/mypy_cache) makes a run
after the first take seconds, so the suite runs it too and `make test` proves it as CI does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_house_types_mypy_passes_on_the_apps() -> None:
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    assert mypy, "mypy is not installed: pip install -r requirements-dev.txt"
    # DEBUG only lets the settings load without production secrets (django-stubs' plugin imports them).
    env = {**os.environ, "DEBUG": "true"}
    result = subprocess.run([mypy], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
