"""Training tasks (manual 2.3); the models they make are in :mod:`workbench.models`.

- :mod:`~workbench.training.service`: :class:`TrainingService`, the tasks' wizard checks,
  state machine, runs, logs and metrics (``Workbench.training``);
- :mod:`~workbench.training.jobs`: :class:`TrainingKind`, a run as a job of the job runner
  (prepare the container, read its metrics, register its model);
- :mod:`~workbench.training.dataset_view`: the dataset a run sees, split applied;
- :mod:`~workbench.training.schemas`: the REST bodies;
- :mod:`~workbench.training.contract`: the training container's side of the contract
  (parameters, paths, metrics, evaluation), imported by the training scripts;
- :mod:`~workbench.training.pytorch`: what the PyTorch training scripts share besides.
"""
