"""SCIM at scale, over real HTTP with keep-alive: 10,000 users created by POST one at a time, then one
PATCH adding 1,000 members to a mapped group. Not part of `make bench`'s table (run it on its own):

    .venv/bin/python bench/scim.py [--users 10000] [--members 1000]

It drops and re-creates its own PostgreSQL database (BENCH_SCIM_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/portal_bench_scim), serves the portal from a second process (Django's
threaded WSGI server, as runserver, but with TCP_NODELAY: runserver writes headers and body apart, and
Nagle's algorithm with delayed ACKs then adds ~40 ms to every keep-alive request), DEBUG off, and times
each request from the client's side. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testing.net import free_port  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/portal_bench_scim"


def serve(port: int) -> None:
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class Handler(WSGIRequestHandler):
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadedWSGIServer(("127.0.0.1", port), Handler)
    httpd.set_app(WSGIHandler())
    httpd.serve_forever()


def _environment() -> dict:
    """The portal's settings for the benchmark, in this process and the server's: its own database, DEBUG off."""
    from bench.run import bench_env

    env = bench_env()
    env["DATABASE_URL"] = os.environ.get("BENCH_SCIM_DATABASE_URL", DEFAULT_DB)
    env["DEBUG"] = "false"
    env["ALLOWED_HOSTS"] = "127.0.0.1"
    env["SECURE_SSL_REDIRECT"] = "false"
    env["LOG_LEVEL"] = "WARNING"
    os.environ.update(env)
    return env


def _scim_integration() -> tuple:
    """A fresh database with a client, its SCIM integration (all users mapped) and a bearer token for it."""
    from bench.common import setup_django

    setup_django(fresh=True)
    from bench.e2e import make_client
    from directory.models import Folder, Integration
    from passportal.models import PermissionLevel, SecurityGroup
    from provisioning.models import Mapping
    from scim.connector import all_users_folder_id
    from scim.tokens import issue_token

    client = make_client("Bench SCIM client")
    integration = Integration.objects.create(client=client, name="Bench SCIM", kind="scim",
                                             disable_threshold_percent=100)
    token = issue_token(integration)
    everyone = Mapping.objects.create(
        folder=Folder.objects.get(integration=integration, external_id=all_users_folder_id(integration.pk)),
        permission_level=PermissionLevel.objects.get(user_kind="site", name="Site User"))
    everyone.security_groups.add(SecurityGroup.objects.create(client=client, name="Everyone"))
    return client, integration, token


def _wait_until_up(http, transport_error: type[Exception]) -> None:
    for _ in range(100):
        try:
            http.get("/ServiceProviderConfig")
            return
        except transport_error:
            time.sleep(0.2)


def _post_users(http, users: int) -> tuple[list[float], list[str], float]:
    """POST each user once, in turn: each request's time (in the order sent), the ids the portal gave, the total."""
    times, ids = [], []
    started = time.perf_counter()
    for n in range(users):
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"user{n}@bench.example",
            "externalId": f"ext-{n}", "active": True, "displayName": f"User {n}",
            "name": {"givenName": f"First{n}", "familyName": f"Last{n}"},
            "emails": [{"primary": True, "type": "work", "value": f"user{n}@bench.example"}],
        }
        t = time.perf_counter()
        response = http.post("/Users", content=json.dumps(body))
        times.append(time.perf_counter() - t)
        if response.status_code != 201:
            raise SystemExit(f"POST {n}: {response.status_code} {response.text[:500]}")
        ids.append(response.json()["id"])
    total = time.perf_counter() - started
    return times, ids, total


def _patch_members(http, client, integration, ids: list[str]) -> tuple[float, int]:
    """A group mapped to Site Manager gets these users in one PATCH: its time, and how many were promoted."""
    from directory.models import Folder
    from passportal.models import PermissionLevel, PortalUser, SecurityGroup
    from provisioning.models import Mapping

    group = http.post("/Groups", content=json.dumps({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Bench group"})).json()
    mapping = Mapping.objects.create(
        folder=Folder.objects.get(integration=integration, external_id=group["id"]),
        permission_level=PermissionLevel.objects.get(user_kind="site", name="Site Manager"))
    mapping.security_groups.add(SecurityGroup.objects.create(client=client, name="Bench group"))
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Add", "path": "members", "value": [{"value": i} for i in ids]}]}
    t = time.perf_counter()
    response = http.patch(f"/Groups/{group['id']}", content=json.dumps(patch))
    seconds = time.perf_counter() - t
    if response.status_code != 204:
        raise SystemExit(f"PATCH members: {response.status_code} {response.text[:500]}")
    return seconds, PortalUser.objects.filter(client=client, permission_level__name="Site Manager").count()


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=1_000)
    args = parser.parse_args()
    env = _environment()
    client, integration, token = _scim_integration()
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import httpx2

        base = f"http://127.0.0.1:{port}/scim/v2/{integration.pk}"
        http = httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {token}",
                                                     "Content-Type": "application/scim+json"}, timeout=60)
        _wait_until_up(http, httpx2.TransportError)
        in_order, ids, total = _post_users(http, args.users)
        times = sorted(in_order)
        patch_seconds, promoted = _patch_members(http, client, integration, ids[:args.members])
        print(json.dumps({
            "users": args.users, "post_median_ms": round(statistics.median(times) * 1000, 1),
            "post_p99_ms": round(times[int(len(times) * 0.99) - 1] * 1000, 1),
            "post_max_ms": round(times[-1] * 1000, 1), "post_total_s": round(total, 1),
            "first_1000_median_ms": round(statistics.median(in_order[:1000]) * 1000, 1),
            "members": args.members, "patch_members_s": round(patch_seconds, 2), "promoted": promoted,
        }))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
