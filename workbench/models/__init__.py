"""The model registry (manual 2.4): models, versions, their files, formats and lineage.

- :mod:`~workbench.models.registry`: :class:`ModelService` (``Workbench.models``): list and
  read with the visibility rules, compare, edit, tags, aliases, delete;
- :mod:`~workbench.models.versions`: :class:`VersionService` (``Workbench.model_versions``):
  register a version (training and imports call it), its files and download; the helpers
  other areas read versions with;
- :mod:`~workbench.models.imports`: :class:`ImportService` (``Workbench.model_imports``):
  a model trained elsewhere, checked and registered;
- :mod:`~workbench.models.conversions`: :class:`ConversionService`
  (``Workbench.conversions``): conversions to deployment formats and benchmarks;
- :mod:`~workbench.models.jobs`: the conversion, benchmark and import jobs;
  :mod:`~workbench.models.formats`: native kinds, formats, signatures;
- :mod:`~workbench.models.evaluation`: accuracy, precision, recall and F1 from a
  confusion matrix, the same for every algorithm;
- :mod:`~workbench.models.schemas`: the REST bodies.
"""
