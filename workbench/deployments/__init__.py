"""Services (manual 2.7): a model version served by replicas of our model server
(:mod:`workbench.serving`), each a container of the version's environment image on the
backend, started, stopped, scaled and restarted by deploy jobs. See docs/services.md."""
