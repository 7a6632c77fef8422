"""`make run`'s script serves the admin login page and Ctrl-C stops the web server and the qcluster."""

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from testing.net import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_run_script_serves_the_login_page_and_ctrl_c_stops_everything(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update(PORTAL_VAR_DIR=str(tmp_path), PORT=str(port), DEBUG="true")
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [str(ROOT / "scripts/run.sh")], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2) as response:
                    status = response.status
                    break
            except OSError:
                time.sleep(0.5)
        assert status == 200, (tmp_path / "run.log").read_text()[-3000:]
        # Links in emails follow the port the portal serves on (issue: they said 8000 whatever PORT was).
        expected = f"PORTAL_BASE_URL=http://127.0.0.1:{port}".encode()
        servers = [pid for pid in processes_of(tmp_path) if b"runserver" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert servers and all(expected in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") for pid in servers)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        proc.wait(timeout=60)
        log.close()
    output = (tmp_path / "run.log").read_text()
    assert "password:" in output, output[-3000:]  # the generated superuser password is printed once
    assert not (tmp_path / "admin_password").exists()
    deadline = time.monotonic() + 20
    while processes_of(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_of(tmp_path) == [], "web server or qcluster still running after Ctrl-C"


def processes_of(var_dir: Path) -> list[int]:
    """Processes started for this test, found by the PORTAL_VAR_DIR in their environment."""
    marker = f"PORTAL_VAR_DIR={var_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found
