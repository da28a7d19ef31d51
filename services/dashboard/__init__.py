"""The web dashboard: server-rendered pages for coordinators, members and vendors (Jinja2, no build)."""
