"""One runner for every long operation (builds, image loads, training, conversion,
benchmark and deploy): queue, claim, log, progress, cancel, re-attach after a restart. It
knows no concrete kind: each area registers its :class:`~workbench.jobs.kinds.JobKind`.

Import from the modules: ``states`` and ``schemas`` are light (the client reads them),
``kinds``, ``runner`` and ``service`` need the registry."""
