"""The SCIM 2.0 endpoints of one integration (/scim/v2/<integration id>/...): thin views over the store.

Every request needs the integration's bearer token (401 with a SCIM error otherwise); a token reaches
its own integration only, and any id of another integration is "not found" (R26). They are
csrf_exempt: nothing here is authenticated by a cookie. A write stores the new state, runs the users it
touches through the engine (scim/sync.py) in the same transaction, and is recorded as a ScimEvent (R24).

One module per seam: `protocol` (the token, JSON and error bodies, a write's record and run), `discovery`,
`listing` (lists and searches), `users` and `groups`.
"""
