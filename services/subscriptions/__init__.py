"""How parties learn what changed: messages, the live stream (SSE) and signed webhooks."""
