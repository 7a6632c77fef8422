"""The on-prem agent: reads Active Directory where the DCs are reachable and pushes it to the portal.

A program of its own (`python -m agent`), with its own pinned requirements (agent/requirements.txt: ldap3 and
requests) and nothing of Django: it reads AD with the portal's own reading code (`adread`), so direct mode
and agent mode see the same directory the same way. agent/README.md says how to install and run it.
"""

VERSION = "0.2.0"
AGENT_VERSION = f"passportal-ad-agent {VERSION}"
