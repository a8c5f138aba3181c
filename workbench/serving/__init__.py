"""The model server that runs inside a service's container: one model version behind the
Open Inference Protocol (KServe V2) REST routes and a simple JSON route, with adaptive
micro-batching and Prometheus metrics. Light imports: no Jupyter, no registry; the
framework of the chosen runtime only (see :mod:`workbench.serving.runtimes`)."""
