"""Reading Active Directory, shared by the portal's direct mode and the standalone on-prem agent.

Nothing here imports Django (a test proves it): the agent runs on a client's machine with ldap3 and the
standard library only, and reads AD with the same code the portal uses when it reaches the DCs itself.
`records` holds the plain records and errors of a read, `ldap` the connector; its parts are `connection` (reaching
a DC: TLS, the bind, the hand-over), `search` (what is asked for, paged), `build` (records of the entries), `dn`
(DN and GUID text), `groups` and `nesting` (who is in which group), and `incremental` reads only what changed.
"""
