"""Which rules serve which format: one :class:`DatasetFormatRules` instance per
:class:`~workbench.enums.DatasetFormat`."""

from __future__ import annotations

from workbench.datasets.formats.base import DatasetFormatRules
from workbench.datasets.formats.brat import BratFormat
from workbench.datasets.formats.coco import CocoFormat
from workbench.datasets.formats.dir import DirFormat
from workbench.datasets.formats.single_text import SingleTextFormat
from workbench.enums import DatasetFormat

_RULES: dict[DatasetFormat, DatasetFormatRules] = {}


def register_format(rules: DatasetFormatRules) -> DatasetFormatRules | None:
    """Serve ``rules.format`` with ``rules`` from now on; returns the rules it replaces
    (None where the format had none), so a caller can put them back."""
    previous = _RULES.get(rules.format)
    _RULES[rules.format] = rules
    return previous


def format_for(fmt: DatasetFormat) -> DatasetFormatRules:
    """The rules of ``fmt``."""
    try:
        return _RULES[fmt]
    except KeyError:
        raise KeyError(f"no rules registered for dataset format {fmt!r}") from None


for _rules in (DirFormat(), CocoFormat(), SingleTextFormat(), BratFormat()):
    register_format(_rules)
