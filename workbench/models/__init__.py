"""The model registry (manual 2.4): models, versions, their files and lineage.

- :mod:`~workbench.models.service`: :class:`ModelService` (``Workbench.models``): list and
  read with the visibility rules, register a version (training calls it);
- :mod:`~workbench.models.evaluation`: accuracy, precision, recall and F1 from a
  confusion matrix, the same for every algorithm;
- :mod:`~workbench.models.schemas`: the REST bodies.
"""
