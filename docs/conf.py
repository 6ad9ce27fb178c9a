"""Sphinx configuration for the refopt textbook.

Build with ``bash docs/build.sh`` (html, then doctest; warnings are errors, nitpicky).
The site is fully offline: MathJax is served from ``_static/mathjax`` (copied there by
``sphinx-mathjax-offline``), there is no intersphinx, and no page loads anything from
another host (``tests/test_docs_site.py`` checks the built HTML).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # tutorials run headless during the build

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # import refopt from the checkout

import refopt  # noqa: E402

# -- Project -------------------------------------------------------------------------
project = "refopt"
author = "The refopt developers"
copyright = "2026, The refopt developers"
release = refopt.__version__
version = release

# -- Extensions ----------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_proof",
    "sphinxcontrib.bibtex",
    "sphinx_gallery.gen_gallery",
    "sphinx-mathjax-offline",  # vendored MathJax 3: sets mathjax_path to _static/mathjax
    "provenance",  # docs/_ext/provenance.py: the :prov: badge and its checks
    "apilinks",  # docs/_ext/apilinks.py: refopt.formats.X -> the documented refopt.X
]

root_doc = "index"
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "tutorials/*.ipynb",
    "tutorials/*.py",
    "tutorials/*.zip",
    "tutorials/*.codeobj.json",
    "tutorials/*.md5",
]
templates_path: list[str] = []
language = "en"
nitpicky = True
numfig = True

# Without intersphinx, references to objects outside refopt cannot resolve. Exempted: NumPy
# and typing names, and the standard library's (``pathlib.Path``, ``os.PathLike`` in
# annotations). Everything of refopt's own must resolve.
_STDLIB = "|".join(sorted(m for m in sys.stdlib_module_names if not m.startswith("_")))
nitpick_ignore_regex = [
    (r"py:.*", rf"({_STDLIB})\..*"),
    (r"py:.*", r"(numpy|np)(\..*)?"),
    (r"py:.*", r"(numpy\.typing|npt)\..*"),
    (r"py:.*", r"(typing|typing_extensions|collections\.abc)\..*"),
]

# -- Math (offline) ------------------------------------------------------------------
mathjax3_config = {
    "tex": {
        "macros": {
            "R": r"\mathbb{R}",
            "E": r"\mathbb{E}",
            "Q": r"\mathcal{Q}",
            "msign": r"\operatorname{msign}",
            "fl": r"\operatorname{fl}",
        },
    },
    # no menu-triggered downloads, no external speech-rule files
    "options": {"enableMenu": False},
}

# -- Theme ---------------------------------------------------------------------------
html_theme = "furo"
html_title = f"refopt {release}"
html_static_path = ["_static"]
html_css_files = ["provenance.css"]
html_show_sourcelink = True
html_last_updated_fmt = None
html_theme_options = {
    "navigation_with_keys": True,
}

# -- sphinx-proof --------------------------------------------------------------------
proof_minimal_theme = False

# -- Provenance (docs/_ext/provenance.py) --------------------------------------------
# Statements from a source carry the source's own number (in their heading and in every
# :prf:ref: to them) instead of sphinx-proof's running counter, which numbers refopt's own.
# Défossez et al.'s numbers are those of the TMLR version (checked on docs/theory/defossez).
prf_fixed_numbers = {
    "paper-assumption-3-1": "3.1",
    "paper-assumptions-4": "4.1–4.4",
    "paper-theorem-4-5": "4.5",
    "paper-theorem-4-6": "4.6",
    "defossez-adagrad": "1",
    "defossez-adam": "2",
    "defossez-adam-momentum": "4",
}
prf_source_names = {"defossez": "Défossez"}

# -- Bibliography --------------------------------------------------------------------
bibtex_bibfiles = ["refs.bib"]
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"

# -- API reference (autodoc + numpydoc) ----------------------------------------------
autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    "show-inheritance": True,
}
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True
viewcode_line_numbers = True

# -- Doctest -------------------------------------------------------------------------
doctest_global_setup = """
import math
import numpy as np
import refopt
"""
doctest_default_flags = (
    __import__("doctest").ELLIPSIS
    | __import__("doctest").NORMALIZE_WHITESPACE
    | __import__("doctest").DONT_ACCEPT_TRUE_FOR_1
)

# -- Tutorials (sphinx-gallery) ------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../tutorials",
    "gallery_dirs": "tutorials",
    "filename_pattern": r"/t\d\d_",
    "ignore_pattern": r"(__init__|conftest)\.py",
    "plot_gallery": True,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "write_computation_times": False,  # the timing page would load CDN scripts
    "download_all_examples": False,
    "show_signature": False,
    "remove_config_comments": True,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "capture_repr": ("_repr_html_", "__repr__"),
    "within_subsection_order": "FileNameSortKey",
    "reset_modules": ("matplotlib",),
}
os.environ.setdefault("MPLBACKEND", "Agg")
