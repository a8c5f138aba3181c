"""The cluster tests: a real multi-node Docker Swarm on this one machine (the ``local_swarm``
fixture of ``tests/docker_fixtures.py``)."""
