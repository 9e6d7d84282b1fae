"""The numpydoc ``Examples`` sections of lti_reduce run as doctests, with NumPy print options fixed.

Every public core function and class named below must have an Examples section with at
least one example; every example in every module of the package must pass.
"""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import lti_reduce

MODULES = sorted(info.name for info in pkgutil.iter_modules(lti_reduce.__path__, "lti_reduce.")
                 if info.name != "lti_reduce.__main__")   # __main__ runs the command line on import

# the public core API: each needs an Examples section that runs
DOCUMENTED = ["StateSpace", "gramian", "hankel_singular_values", "balanced_truncation", "hinf_norm", "h2_norm",
              "hankel_norm", "select_order", "error_bound", "balred", "hsvd", "gram", "load_system"]

PRINT_OPTIONS = dict(precision=8, floatmode="maxprec", suppress=False, linewidth=75, legacy=False)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("name", DOCUMENTED)
def test_public_function_has_examples(name):
    tests = doctest.DocTestFinder(recurse=False).find(getattr(lti_reduce, name), name=name)
    assert tests and tests[0].examples, f"lti_reduce.{name} has no doctest examples"
    assert "Examples\n" in getattr(lti_reduce, name).__doc__


@pytest.mark.parametrize("module_name", MODULES)
def test_examples_run(module_name, tmp_path, monkeypatch):
    module = importlib.import_module(module_name)
    monkeypatch.chdir(tmp_path)   # examples that write files write them here
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    with np.printoptions(**PRINT_OPTIONS):
        for test in finder.find(module, module_name):
            runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)
