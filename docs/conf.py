"""
Sphinx configuration for txami's documentation.

Build it from the repository root, with warnings as errors as CI does::

    .venv/bin/pip install -e '.[docs]'
    .venv/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

The API pages (``docs/api/``) are written at every build from the code
(``_ext/txami_api.py``); they are not kept in git.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# The checkout first: autodoc documents this tree, not an installed copy.
sys.path[:0] = [os.path.dirname(HERE), os.path.join(HERE, "_ext")]

import txami  # noqa: E402

project = "txami"
author = "the txami developers"
project_copyright = "the txami developers"
version = release = txami.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode", "txami_api"]

exclude_patterns = ["_build", "performance-table.rst"]

# Backticks in docstrings are cross-references, as in Twisted's own
# documentation: `txami.message` or `Message` links when Sphinx knows it.
default_role = "py:obj"
# A code block is highlighted only when it names its language.
highlight_language = "none"

# A broken link to txami's own public API is an error.  Names from Twisted
# and the standard library cannot be resolved without the network, and
# private names (a private base class) are not documented: both stay text.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!txami\b).*"), (r"py:.*", r".*\._.*")]

autodoc_member_order = "bysource"
autodoc_preserve_defaults = True
autodoc_typehints_format = "short"
autodoc_class_signature = "separated"

html_theme = "furo"
html_title = f"txami {release}"
