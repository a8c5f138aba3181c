"""Which types a skops file may hold: skops' own trusted defaults (primitives, containers,
NumPy and SciPy data and ufuncs, scikit-learn's public estimators) plus the classes of
:data:`CLASSES`, internal parts of scikit-learn that fitted models hold. Nothing else: no
function, method, ``functools.partial`` or ``operator`` getter. Loading one runs nothing,
but an estimator holding one calls it when the model runs (a ``FunctionTransformer``
whose ``func`` is ``builtins.eval``, ``numpy.load`` or one of scikit-learn's own helpers),
which is running the file's author's code by another name.

It imports nothing but the standard library and skops: the scripts of this folder import
it as ``skops_trust`` (they run as scripts, in a container), the model server as
``workbench.models.container.skops_trust``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

#: scikit-learn's internal classes that fitted models hold and skops does not trust by
#: default, each a class (checked when the list is read). Not HistGradientBoosting's
#: ``TreePredictor``: skops leaves it out on purpose, as scikit-learn indexes its node
#: array unchecked (a crafted one reads out of bounds)
CLASSES = (
    "sklearn.tree._tree.Tree",  # decision trees, random forests, gradient boosting
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",  # MLPs
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.neighbors._kd_tree.KDTree",  # nearest neighbours
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
)


class UntrustedTypes(Exception):
    """A skops file needs types outside the list; the message names them and what to do."""


def trusted_types(path: Path) -> list[str]:
    """The types of :data:`CLASSES` that the skops file at ``path`` needs beyond skops'
    defaults (give them to ``skops.io.load(trusted=...)``); :class:`UntrustedTypes` when
    it needs any other."""
    import skops.io

    needed = skops.io.get_untrusted_types(file=path)
    allowed = allowed_classes()
    refused = [name for name in needed if name not in allowed]
    if refused:
        more = f" and {len(refused) - 10} more" if len(refused) > 10 else ""
        raise UntrustedTypes(
            f"{path.name} needs types that Workbench does not load from a skops file: "
            f"{', '.join(refused[:10])}{more}. A skops file may hold scikit-learn's "
            "estimators and NumPy and SciPy data, never functions or methods (a "
            "FunctionTransformer's func, a functools.partial, an operator getter): loading "
            "them would run whatever they name. Export the model to ONNX (skl2onnx) and "
            "import that, or, for a scikit-learn class a fitted model needs, ask an admin "
            "to add it to workbench/models/container/skops_trust.py"
        )
    return needed


def allowed_classes() -> set[str]:
    """The names of :data:`CLASSES` that are classes of the scikit-learn installed here
    (one that this version lacks, or that is not a class, is left out)."""
    found = set()
    for name in CLASSES:
        module, _, attribute = name.rpartition(".")
        try:
            value = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError):
            continue
        if isinstance(value, type) and f"{value.__module__}.{value.__qualname__}" == name:
            found.add(name)
    return found
