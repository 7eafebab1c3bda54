"""One router per resource; ``ROUTERS`` is the list app.py mounts under /api/v1."""
