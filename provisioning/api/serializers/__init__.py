"""Serializers of the staff API, one module per part of it: clients, integrations (with folders, mappings, runs and
agent tokens), portal users (and the bell), the vault's levels and groups, creation issues; `common` holds what they
share. Secrets (bind password, client secret) are write-only: never returned (R25)."""
