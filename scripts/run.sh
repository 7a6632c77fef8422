#!/usr/bin/env bash
# Start the portal for development: migrate, first-start set-up, web server and a qcluster.
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DEBUG="${DEBUG:-true}"
PORT="${PORT:-8000}"
# Links in emails must reach this server: follow PORT unless the operator set the address people use.
export PORTAL_BASE_URL="${PORTAL_BASE_URL:-http://127.0.0.1:${PORT}}"

$PY manage.py migrate --no-input -v0
$PY manage.py createcachetable
$PY manage.py bootstrap
if $PY manage.py help seed_demo >/dev/null 2>&1; then
    $PY manage.py seed_demo
fi

pids=()
stop() {
    trap - INT TERM EXIT
    # The cluster's sentinel stops its own workers; the web server stops on TERM.
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 30); do
        alive=0
        for pid in "${pids[@]}"; do
            pgrep -g "$pid" >/dev/null 2>&1 && alive=1
        done
        [ $alive = 0 ] && return 0
        sleep 0.5
    done
    # Whatever is left after 15 s (a worker stuck in a task) is stopped for good.
    for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}
trap stop INT TERM EXIT

# Each in a process group of its own, so stopping one never leaves its children behind.
setsid .venv/bin/python manage.py qcluster &
pids+=($!)
echo "Portal: http://127.0.0.1:${PORT}/admin/  (Ctrl-C stops the web server and the task cluster)"
echo "Links in emails point at ${PORTAL_BASE_URL}"
case "${DATABASE_URL:-sqlite}" in
    sqlite*) echo "Database: SQLite, for one host and up to about 25,000 portal users (README, Operations)";;
esac
setsid .venv/bin/python manage.py runserver "127.0.0.1:${PORT}" --noreload &
pids+=($!)
wait -n "${pids[@]}"
