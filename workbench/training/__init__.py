"""Training tasks (manual 2.3) and the models they make (2.4).

- :mod:`~workbench.training.service`: :class:`TrainingService`, the tasks' wizard checks,
  state machine, runs, logs, metrics and models (``Workbench.training``);
- :mod:`~workbench.training.runner`: :class:`TrainingRunner`, which starts queued runs on
  the backend, follows them and records their outcome (started by the server);
- :mod:`~workbench.training.dataset_view`: the dataset a run sees, split applied;
- :mod:`~workbench.training.evaluation`: accuracy, precision, recall and F1 from a run's
  confusion matrix;
- :mod:`~workbench.training.schemas`: the REST bodies.
"""
