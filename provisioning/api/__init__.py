"""The staff REST API: clients, integrations, folders, mappings (apply, with a dry run), runs, users, notifications."""
