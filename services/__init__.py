"""How people and systems reach the hub: HTTP API, subscriptions, read model, dashboard, CLI."""
