"""Entra ID end to end: the Graph stand-in (testing/fake_entra.py) with 20,000 users over 200 AUs.

The stand-in runs in a process of its own (as Graph would be elsewhere), so its JSON work does not
share this process's interpreter with the code measured. Cases: initial (every user created) and
nochange (a second full run over the same tenant), each through the engine with an Entra
integration (real msal token, real HTTPS). Floor: the same Graph pages fetched with requests and the
same kind of token, one after the other, in the same run.

Issue 19 part 4: `initial_latency` is the initial run with Graph's page latency (`page_delay`, 150 ms a page), its
floor the same pages fetched one after another at that latency; the stand-in counts the Graph requests of the
timed run, its 429 answers (none injected: every one would be the read's own doing) and the most held at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import dispatch, measured, setup_django  # noqa: E402
from bench.e2e import timed_run  # noqa: E402

USERS = 20_000
AUS = 200


# ---------------------------------------------------------------- the stand-in, in its own process


def serve(params: dict) -> None:
    """Seed the stand-in, print how to reach it as one JSON line, and serve until stdin closes.

    A "mark" line on stdin starts the count afresh (answered "marked"); when stdin closes, one JSON line says what
    Graph was asked since: requests, 429 answers and the most requests in flight at once.
    """
    from testing.fake_entra import FakeEntraServer

    server = FakeEntraServer().start()
    server.seed(aus=AUS, users=USERS)
    server.page_delay = float(params.get("page_delay", 0))
    print(json.dumps({"login_host": server.login_host, "graph_base_url": server.graph_base_url,
                      "ca_pem": server.ca_pem, "tenant": server.tenant.guid, "client_id": server.app.client_id,
                      "secret": server.app.secret}), flush=True)
    for line in sys.stdin:  # the case closes our stdin when it is done (or dies)
        if line.strip() == "mark":
            with server._lock:
                server.requests_seen.clear()
                server.max_in_flight = server.in_flight
            print("marked", flush=True)
    graph = server.requests_to("/v1.0/")
    print(json.dumps({"graph_requests": len(graph), "graph_429": sum(r.status == 429 for r in graph),
                      "max_in_flight": server.max_in_flight}), flush=True)
    server.stop()


class StandIn:
    def __init__(self, params: dict | None = None) -> None:
        self.params = params or {}
        self.counted: dict = {}

    def __enter__(self) -> dict:
        self.process = subprocess.Popen([sys.executable, __file__, "serve", json.dumps(self.params)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env=dict(os.environ))
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the Graph stand-in did not start")
        return json.loads(line)

    def mark(self) -> None:
        """Count Graph's requests from here (what the timed part asks, not the set-up)."""
        self.process.stdin.write("mark\n")
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != "marked":
            raise SystemExit("the Graph stand-in did not answer")

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()
        last = self.process.stdout.readline()
        self.counted = json.loads(last) if last.strip() else {}
        self.process.wait(timeout=30)


# ---------------------------------------------------------------- the cases


def setup(graph: dict):
    """A fresh database with an Entra integration (tenant checked as the admin form does), its 200 AUs mapped."""
    setup_django(fresh=True)
    from bench.e2e import make_client, map_folders
    from directory.entra_tenant import check_entra_integration
    from directory.models import Integration
    from provisioning import sync

    integration = Integration(
        client=make_client(), name="Bench Entra", kind="entra", entra_role="primary", tenant=graph["tenant"],
        app_client_id=graph["client_id"], client_secret=graph["secret"], login_host=graph["login_host"],
        graph_base_url=graph["graph_base_url"], tls_ca_pem=graph["ca_pem"], disable_threshold_percent=100,
    )
    check_entra_integration(integration)
    integration.save()
    sync.run_sync(integration, "command")  # nothing mapped yet: records the AUs (R19)
    aus = integration.folders.values_list("external_id", flat=True)
    if map_folders(integration, aus) != AUS:
        raise SystemExit(f"expected {AUS} AUs, found {len(aus)}")
    return integration


def case_initial(params: dict) -> dict:
    with StandIn() as graph:
        integration = setup(graph)
        result: dict = {}
        timed_run(integration, result)
    if result["counts"].get("created") != USERS:
        raise SystemExit(f"expected {USERS} users created, got {result['counts']}")
    return result


def case_initial_latency(params: dict) -> dict:
    """The initial run at Graph's page latency; the stand-in counts what the run asked of it."""
    stand_in = StandIn(params)
    with stand_in as graph:
        integration = setup(graph)
        stand_in.mark()
        result: dict = {}
        timed_run(integration, result)
    if result["counts"].get("created") != USERS:
        raise SystemExit(f"expected {USERS} users created, got {result['counts']}")
    from django.conf import settings

    result.update(stand_in.counted, injected_429=0, read_concurrency=settings.ENTRA_READ_CONCURRENCY)
    return result


def case_nochange(params: dict) -> dict:
    with StandIn() as graph:
        integration = setup(graph)
        timed_run(integration, {})
        result: dict = {}
        timed_run(integration, result)
    return result


def case_floor(params: dict) -> dict:
    """A token from msal (not timed), then the pages a full read fetches, with one requests.Session."""
    import msal
    import requests

    from directory.connectors.entra import AU_SELECT, USER_SELECT
    from directory.connectors.entra_groups import GROUP_FILTER, GROUP_SELECT

    stand_in = StandIn(params)
    with stand_in as graph:
        setup_django(fresh=False)
        with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as ca:
            ca.write(graph["ca_pem"])
        session = requests.Session()
        session.trust_env = False
        session.verify = ca.name
        app = msal.ConfidentialClientApplication(
            graph["client_id"], client_credential=graph["secret"], instance_discovery=False,
            authority=f"https://{graph['login_host']}/{graph['tenant']}", http_client=session)
        token = app.acquire_token_for_client(scopes=[f"https://{graph['login_host']}/.default"])["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        base = graph["graph_base_url"]

        def pages(url: str):
            while url:
                body = session.get(url, headers=headers, timeout=60).json()
                yield body
                url = body.get("@odata.nextLink")

        result: dict = {}
        users = 0
        stand_in.mark()
        with measured(result):
            for path in (f"/users/delta?$select={USER_SELECT}",
                         f"/directory/administrativeUnits/delta?$select={AU_SELECT}"):
                list(pages(f"{base}{path}&$deltatoken=latest"))
            au_list = f"{base}/directory/administrativeUnits?$select={AU_SELECT}&$top=999"
            au_ids = [item["id"] for body in pages(au_list) for item in body["value"]]
            list(pages(f"{base}/groups?$filter={GROUP_FILTER}&$select={GROUP_SELECT}&$top=999"))  # group folders
            for au_id in au_ids:
                for body in pages(f"{base}/directory/administrativeUnits/{au_id}/members/microsoft.graph.user"
                                  f"?$select={USER_SELECT}&$top=999"):
                    users += len(body["value"])
        os.unlink(ca.name)
    if users != USERS:
        raise SystemExit(f"the floor read {users} users, expected {USERS}")
    result.update(stand_in.counted, users=users)
    return result


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(json.loads(sys.argv[2]))
    else:
        dispatch({"initial": case_initial, "initial_latency": case_initial_latency, "nochange": case_nochange,
                  "floor": case_floor})
