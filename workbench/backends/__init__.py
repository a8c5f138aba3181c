"""Where things run: Docker Engine, local processes (and later Docker Swarm).

Not built yet: the backend interface and its ``docker`` and ``local`` implementations
arrive with container workspaces (see docs/architecture.md, "planned").
"""
