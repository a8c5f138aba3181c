"""``python -m workbench.environments``: ``definitions`` and ``build-local``, as in
``workbench environment``."""

from workbench.cli.environments import local

local(prog_name="python -m workbench.environments")
