"""The application service that both doors — the HTTP API and the dashboard — call: commands
(``commands``) and reads (``reads``) handed to ``service.Application``, sent and read by ``hub``."""
