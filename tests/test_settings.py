"""Settings mistakes stop start-up with a message naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "p" * 20 + "-production-like-secret-key-with-enough-entropy-0123456789",
    "FIELD_ENCRYPTION_KEYS": "tWf3bQ8xv0v4b0dQ1Y5pL0xY8cG9w3oJr0e2Q2o6y4E=",
    "ALLOWED_HOSTS": "portal.example.com",
    "DATABASE_URL": "sqlite:////tmp/portal-settings-test.sqlite3",
}


def manage(*args: str, env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    base["PORTAL_VAR_DIR"] = str(tmp_path)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env={**base, **env}, capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )


def test_without_secret_key_and_debug_off_the_portal_refuses_to_start(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_encryption_keys_and_debug_off_the_portal_refuses_to_start(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != "FIELD_ENCRYPTION_KEYS"}
    result = manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0 and "FIELD_ENCRYPTION_KEYS" in result.stderr


def test_a_malformed_database_url_names_the_variable(tmp_path):
    for bad in ("not a url", "postgres://", "mongodb://host/db"):
        result = manage("check", env={**PRODUCTION, "DATABASE_URL": bad}, tmp_path=tmp_path)
        assert result.returncode != 0, bad
        assert "DATABASE_URL is malformed" in result.stderr, (bad, result.stderr)


def test_in_development_a_secret_key_is_generated_once_into_var(tmp_path):
    env = {"DEBUG": "true", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    assert manage("check", env=env, tmp_path=tmp_path).returncode == 0
    first = (tmp_path / "secret_key").read_text()
    assert manage("check", env=env, tmp_path=tmp_path).returncode == 0
    assert (tmp_path / "secret_key").read_text() == first and len(first) >= 50
    assert oct((tmp_path / "secret_key").stat().st_mode)[-3:] == "600"


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
