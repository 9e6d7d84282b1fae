"""Sphinx configuration of the lti-reduce documentation.

Build (offline; nothing is fetched at build time)::

    python -m sphinx -b html -W --keep-going docs docs/_build/html

The API reference of ``lti_reduce`` is written out in ``api.rst``; two markers in it are
filled here, at read time:

* ``.. lti-reduce-other-names`` becomes a section with every name of
  ``lti_reduce.__all__`` that ``api.rst`` does not document yet (normally nothing), so a
  new public name never goes missing from the reference;
* ``.. lti-reduce-torch-api`` becomes the reference of ``lti_reduce_torch``, generated from
  the ``__all__`` of the package and of its public submodules, or a note when torch is not
  installed (the build then still succeeds).
"""

import importlib
import inspect
import os
import re
import shutil
import sys

from sphinx.util import logging

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

import lti_reduce  # noqa: E402

# -- project ------------------------------------------------------------------------------
project = "lti-reduce"
author = "lti-reduce developers"
copyright = "lti-reduce developers"
release = lti_reduce.__version__
version = ".".join(release.split(".")[:2])

# -- general ------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",     # MathJax from a local copy (below): the pages render offline
    "numpydoc",
    "myst_parser",            # performance.md and results.md: tables written by the benchmarks/runner
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples"]
templates_path = []
default_role = "literal"      # `x` in a docstring is code, never a failed cross-reference
pygments_style = "sphinx"

autodoc_member_order = "bysource"
autodoc_typehints = "none"    # the numpydoc sections carry the types
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = True

numpydoc_show_class_members = False      # no autosummary tables (members are documented in place)
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- HTML ---------------------------------------------------------------------------------
html_theme = "alabaster"
html_static_path = []
html_theme_options = {
    "description": "Exact model order reduction of LTI systems",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "230px",
}
html_show_sourcelink = False

# -- math, offline -------------------------------------------------------------------------
# MathJax 3's self-contained SVG build (one file, no fonts to fetch) from the
# django-static-mathjax wheel (Apache-2.0; the docs extra installs it) is copied into
# _static/mathjax/ after the build, so the HTML renders equations with no network.
try:
    import mathjax as _mathjax_package
except ImportError:
    _MATHJAX_JS = None
else:
    _MATHJAX_JS = os.path.join(os.path.dirname(_mathjax_package.__file__), "static", "mathjax", "es5", "tex-svg.js")
    if os.path.isfile(_MATHJAX_JS):
        mathjax_path = "mathjax/tex-svg.js"        # relative to _static
    else:
        _MATHJAX_JS = None


# -- generated parts of api.rst -----------------------------------------------------------
def _directive(obj):
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return "autoexception", []
        return "autoclass", [":members:"]
    if callable(obj):
        return "autofunction", []
    return "autodata", []


def _block(qualname, obj):
    directive, options = _directive(obj)
    lines = [f".. {directive}:: {qualname}"] + [f"   {o}" for o in options]
    return "\n".join(lines) + "\n"


def _title(text, char):
    return f"{text}\n{char * len(text)}\n"


def _other_core_names(source):
    """Names of ``lti_reduce.__all__`` that api.rst does not document (aliases listed apart)."""
    documented = set(re.findall(r"^\.\. auto\w+:: lti_reduce\.(\w+)\s*$", source, flags=re.M))
    by_id = {id(getattr(lti_reduce, n)): n for n in documented if hasattr(lti_reduce, n)}
    rest = []
    for name in lti_reduce.__all__:
        if name in documented:
            continue
        obj = getattr(lti_reduce, name)
        if id(obj) in by_id:   # an alias of a documented name
            continue
        rest.append(name)
    if not rest:
        return ""
    out = [_title("Other names", "~"),
           "Public names of ``lti_reduce`` not yet placed in a section above.\n"]
    out += [_block(f"lti_reduce.{name}", getattr(lti_reduce, name)) for name in rest]
    return "\n".join(out)


# public submodules of lti_reduce_torch, in the order they are presented
_TORCH_SUBMODULES = [
    ("reduce", "In-place reduction: ``reduce_``"),
    ("schedule", "Schedules: ``Compressor``"),
    ("optim", "Optimizer rebinding"),
    ("checkpoint", "Checkpoints of reduced models"),
    ("layers", "Layers"),
    ("adapters", "Adapters of the built-in layers"),
    ("selection", "Selection methods of ``reduce_``"),
    ("toolkit", "Adapter toolkit"),
    # issue 9 (i9): distributed training and the Lightning callback (optional: needs lightning)
    ("distributed", "Distributed training: ``DistributedCompressor``"),
    ("lightning", "Lightning: ``CompreSSMCallback``"),
]


def _public(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")
                 and not inspect.ismodule(getattr(module, n))]
    return list(names)


def _torch_api():
    try:
        import torch  # noqa: F401
    except ImportError:
        return ("``lti_reduce_torch`` is not documented in this build: torch is not installed.\n"
                "Install it (``pip install torch==2.13.0``) and rebuild.\n")
    package = importlib.import_module("lti_reduce_torch")
    top = _public(package)
    placed = {id(getattr(package, n)) for n in top}
    out = [_title("Package ``lti_reduce_torch``", "~"),
           ".. module:: lti_reduce_torch\n",
           (inspect.getdoc(package) or "").strip() + "\n"]
    out += [_block(f"lti_reduce_torch.{name}", getattr(package, name)) for name in top]
    for sub, heading in _TORCH_SUBMODULES:
        qualname = f"lti_reduce_torch.{sub}"
        try:
            module = importlib.import_module(qualname)
        except ModuleNotFoundError as exc:
            if exc.name in (qualname, "lightning"):   # not written yet / optional dependency missing
                continue
            raise
        names = [n for n in _public(module) if id(getattr(module, n)) not in placed]
        if not names:
            continue
        out += [_title(heading, "~"), f".. module:: {qualname}\n"]
        out += [_block(f"{qualname}.{name}", getattr(module, name)) for name in names]
        placed.update(id(getattr(module, n)) for n in names)
    return "\n".join(out)


def _fill_api(app, docname, source):
    if docname != "api":
        return
    text = source[0]
    text = text.replace(".. lti-reduce-other-names\n", _other_core_names(text) + "\n")
    text = text.replace(".. lti-reduce-torch-api\n", _torch_api() + "\n")
    source[0] = text


# -- docstrings: bare names ending in "_" are code -----------------------------------------
# In reStructuredText a word ending in "_" (``reduce_``, ``resize_``) is a hyperlink
# reference, and an unknown one is an error. This project names its in-place functions
# that way, so such a bare word in a docstring is shown as code instead. Literal blocks,
# doctest lines, directives and inline roles are left alone.
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\w.:|*\\])([A-Za-z_][\w.]*[A-Za-z0-9]_)(?![`\w])")


def _literal_trailing_underscores(app, what, name, obj, options, lines):
    literal_indent = None      # indentation of the paragraph that opened a literal block
    open_quote = None          # "``" or "`" while an inline literal / role spans lines
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if not stripped:
            open_quote = None  # inline markup never spans paragraphs
        if literal_indent is not None:
            if stripped and indent <= literal_indent:
                literal_indent = None
            else:
                continue
        if not stripped.startswith((">>>", "...", "..")):
            parts = re.split(r"(``|`)", line)
            for j, part in enumerate(parts):
                if part in ("``", "`"):
                    if open_quote is None:
                        open_quote = part
                    elif open_quote == part:
                        open_quote = None
                elif open_quote is None:
                    parts[j] = _TRAILING_UNDERSCORE.sub(r"``\1``", part)
            lines[i] = "".join(parts)
        if line.rstrip().endswith("::"):
            literal_indent = indent


def _copy_mathjax(app, exception):
    if exception is None and _MATHJAX_JS and app.builder.format == "html":
        target = os.path.join(app.outdir, "_static", "mathjax")
        os.makedirs(target, exist_ok=True)
        shutil.copyfile(_MATHJAX_JS, os.path.join(target, "tex-svg.js"))


def _warn_without_mathjax(app):
    if _MATHJAX_JS is None and app.builder.format == "html":
        logging.getLogger(__name__).warning(
            "django-static-mathjax is not installed (pip install -e '.[docs]'): the pages will load MathJax "
            "from its CDN and show LaTeX source offline")


def setup(app):
    app.connect("builder-inited", _warn_without_mathjax)
    app.connect("build-finished", _copy_mathjax)
    app.connect("source-read", _fill_api)
    app.connect("autodoc-process-docstring", _literal_trailing_underscores)
