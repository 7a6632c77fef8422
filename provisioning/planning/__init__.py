"""The planner's parts, one job each; callers import the planner's public names from `provisioning.planner`.

`data` (what goes in and what comes out), `reasons` (why a user is disabled or not created), `cleaning`
(directory values made safe to store), `scope` (which folders count and what they grant), `emails` (who holds
each email, R4) and `passes` (the steps of one planning, over a shared `Context`).
"""
