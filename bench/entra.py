"""Entra ID end to end: the Graph stand-in (testing/fake_entra.py) with 20,000 users over 200 AUs.

The stand-in runs in a process of its own (as Graph would be elsewhere), so its JSON work does not
share this process's interpreter with the code measured. Cases: initial (every user created) and
nochange (a second full run over the same tenant), each through the engine with an Entra
integration (real msal token, real HTTPS). Floor: the same Graph pages fetched with requests and the
same kind of token, one after the other, in the same run.
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


def serve() -> None:
    """Seed the stand-in, print how to reach it as one JSON line, and serve until stdin closes."""
    from testing.fake_entra import FakeEntraServer

    server = FakeEntraServer().start()
    server.seed(aus=AUS, users=USERS)
    print(json.dumps({"login_host": server.login_host, "graph_base_url": server.graph_base_url,
                      "ca_pem": server.ca_pem, "tenant": server.tenant.guid, "client_id": server.app.client_id,
                      "secret": server.app.secret}), flush=True)
    sys.stdin.read()  # the case closes our stdin when it is done (or dies)
    server.stop()


class StandIn:
    def __enter__(self) -> dict:
        self.process = subprocess.Popen([sys.executable, __file__, "serve", "{}"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=dict(os.environ))
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the Graph stand-in did not start")
        return json.loads(line)

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()
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

    with StandIn() as graph:
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
        with measured(result):
            for path in (f"/users/delta?$select={USER_SELECT}",
                         f"/directory/administrativeUnits/delta?$select={AU_SELECT}"):
                list(pages(f"{base}{path}&$deltatoken=latest"))
            au_list = f"{base}/directory/administrativeUnits?$select={AU_SELECT}&$top=999"
            au_ids = [item["id"] for body in pages(au_list) for item in body["value"]]
            for au_id in au_ids:
                for body in pages(f"{base}/directory/administrativeUnits/{au_id}/members/microsoft.graph.user"
                                  f"?$select={USER_SELECT}&$top=999"):
                    users += len(body["value"])
        os.unlink(ca.name)
    result["users"] = users
    return result


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve()
    else:
        dispatch({"initial": case_initial, "nochange": case_nochange, "floor": case_floor})
