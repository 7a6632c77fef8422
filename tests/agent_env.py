"""A Python environment holding only the on-prem agent and its own requirements, as an agent host installs it.

`build_agent_venv` makes a venv (no pip, nothing of the portal) and puts into it exactly the distributions
agent/requirements.txt pins, linked from the suite's own environment (which installs that file through
requirements-dev.txt, so the versions are the pinned ones; checked), plus agent/ and adread/. It needs no
network, so it builds in about a second. Django is not importable in it: an agent that imported any of the
portal would fail to start there.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "agent" / "requirements.txt"


def pinned() -> list[tuple[str, str]]:
    """(distribution, version) of every line of agent/requirements.txt."""
    pins = []
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins.append((name.strip(), version.strip()))
    return pins


def _top_level(dist: importlib.metadata.Distribution) -> set[str]:
    """The names a distribution puts into site-packages (its packages, modules and metadata directory)."""
    names = set()
    for file in dist.files or ():
        first = file.parts[0]
        if first not in ("..", "__pycache__") and not first.endswith(".pth"):
            names.add(first)
    return names


def build_agent_venv(dest: Path) -> Path:
    """A venv at dest with only the agent's requirements and code; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True, capture_output=True)
    python = dest / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    for name, version in pinned():
        dist = importlib.metadata.distribution(name)
        assert dist.version == version, f"{name} {dist.version} installed, agent/requirements.txt pins {version}"
        for top in _top_level(dist):
            source = Path(dist.locate_file(top))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
    for package in ("agent", "adread"):
        (site / package).symlink_to(ROOT / package)
    return python


@pytest.fixture(scope="session")
def agent_python(tmp_path_factory) -> Path:
    """The python of an environment with only the agent and its pinned requirements (built once per session)."""
    return build_agent_venv(tmp_path_factory.mktemp("agent-venv") / "venv")
