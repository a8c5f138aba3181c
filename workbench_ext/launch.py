"""``python -m workbench_ext.launch``: JupyterLab as ``workbench lab`` starts it, without
deprecation warnings about code that is not the user's.

Voila, once imported, shows traitlets' deprecation warnings (a filter it adds), and the
server imports every extension while it starts: jupyter_lsp's trait declarations then
print two warnings about traitlets' old spellings. Voila is imported first here, so the
filters below stand before its own; every other warning still shows.
"""

from __future__ import annotations

import sys
import warnings

import voila  # noqa: F401  (its filter first: ours, added after, take precedence)
from jupyterlab.labapp import main

#: what jupyter_lsp's LanguageServerManager makes traitlets say (jupyter-lsp 2.3)
THIRD_PARTY_DEPRECATIONS = (
    r"Keyword `trait` is deprecated in traitlets 5\.0",
    r"Traits should be given as instances, not types",
)

for message in THIRD_PARTY_DEPRECATIONS:
    warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)

if __name__ == "__main__":
    sys.exit(main())
