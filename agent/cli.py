"""The agent's command line: `python -m agent [--once | --check | --version] [--config agent.ini] ...`.

Exit status: 0 done, 1 the read or the push failed (the message says why), 2 a setting is missing or wrong.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from adread.records import DirectoryError

from . import AGENT_VERSION
from .config import MAX_CHUNK_SIZE, ConfigError, load_config
from .portal import PortalClient, PortalDown, PortalRefused
from .run import check, run_once, serve


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="passportal-ad-agent",
        description="Read Active Directory and push it to the portal: at start, every 6 hours, and whenever the "
                    "portal asks (it polls every minute). Settings from flags, the environment or --config.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="Push once and exit.")
    mode.add_argument("--check", action="store_true",
                      help="Connect, bind, count the users of each mapped OU, print and exit (pushes nothing).")
    mode.add_argument("--version", action="version", version=AGENT_VERSION)
    p.add_argument("--config", help="An INI file with an [agent] section (keys: the long flag names, underscores).")
    p.add_argument("--portal", help="The portal's base URL, e.g. https://portal.example.com")
    p.add_argument("--token", help="The integration's agent token (prefer AGENT_TOKEN or --config: ps shows flags).")
    p.add_argument("--ldap-url", action="append", help="An LDAP URL; repeat for failover, in order.")
    p.add_argument("--base-dn")
    p.add_argument("--bind-dn", help="Bind DN or UPN of a read-only service account.")
    p.add_argument("--bind-password-file", help="File holding the bind password (readable by the agent's account).")
    # Accepted only to be refused with a message that says where the password goes instead.
    p.add_argument("--bind-password", help=argparse.SUPPRESS)
    p.add_argument("--insecure", action="store_true",
                   help="Allow http:// to the portal and --tls-mode none, with a warning (test labs only).")
    p.add_argument("--ca-file", help="PEM file of the CA that signed the DCs' certificates.")
    p.add_argument("--tls-mode", choices=["ldaps", "starttls", "none"])
    p.add_argument("--tls-verify", choices=["true", "false"])
    p.add_argument("--page-size", type=int)
    p.add_argument("--portal-ca-file", help="PEM file of a private CA for the portal's HTTPS.")
    p.add_argument("--interval-hours", type=float, help="Hours between regular pushes (6).")
    p.add_argument("--poll-seconds", type=float, help="Seconds between polls for the portal's requests (60).")
    p.add_argument("--chunk-size", type=int, help=f"Records per request (at most {MAX_CHUNK_SIZE}).")
    p.add_argument("--retries", type=int, help="Attempts per request while the portal is down.")
    p.add_argument("--retry-delay", type=float, help="First wait in seconds; doubles each attempt.")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    options = vars(parser().parse_args(argv))
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    # The HTTP and LDAP libraries' debug lines could carry headers (the token): never below INFO.
    for noisy in ("urllib3", "ldap3"):
        logging.getLogger(noisy).setLevel(logging.INFO)

    def out(line: str) -> None:
        print(line, flush=True)

    try:
        config = load_config(options, os.environ, options.get("config"), need_portal=not options["check"])
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    for warning in config.warnings:
        print(f"WARNING (--insecure): {warning}.", file=sys.stderr)
    client = PortalClient(config) if config.portal and config.token else None
    try:
        if options["check"]:
            check(config, client, out)
        else:
            assert client is not None, "load_config asks for the portal and its token unless --check"
            if options["once"]:
                out(run_once(config, client).message)
            else:
                serve(config, client, out)
    except (DirectoryError, PortalRefused, PortalDown) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
