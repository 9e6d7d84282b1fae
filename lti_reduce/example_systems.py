"""Published example systems with known reduction results, for tests, documentation and trials.

Each function returns a fresh system built from the data printed in its source.
"""

import numpy as np

from ._statespace import StateSpace

__all__ = ["slicot_ab09_system"]


def slicot_ab09_system():
    """The continuous 7-state, 2-input, 3-output system of SLICOT's AB09 example programs.

    The data of the example programs of AB09AD (balanced truncation), AB09BD (singular
    perturbation approximation) and AB09MD/AB09ND (the same of the alpha-stable part);
    their printed results (HSVs, reduced systems of order 5) are reproduced by
    ``tests/core/test_slicot_examples.py``.

    Returns
    -------
    system : StateSpace
        ``x' = A x + B u``, ``y = C x`` (``D = 0``, ``dt = 0``), float64, n = 7, m = 2, p = 3.

    Examples
    --------
    >>> import lti_reduce as lr
    >>> from lti_reduce.example_systems import slicot_ab09_system
    >>> system = slicot_ab09_system()
    >>> system
    StateSpace(n=7, m=2, p=3, continuous, dtype=float64)
    >>> lr.hankel_singular_values(system).round(4)   # SLICOT prints 2.5139 2.0846 ... 0.0246
    array([2.5139, 2.0846, 1.9178, 0.7666, 0.5473, 0.0253, 0.0246])
    """
    A = np.array([[-0.04165, 0, 4.92, -4.92, 0, 0, 0],
                  [-5.21, -12.5, 0, 0, 0, 0, 0],
                  [0, 3.33, -3.33, 0, 0, 0, 0],
                  [0.545, 0, 0, 0, -0.545, 0, 0],
                  [0, 0, 0, 4.92, -0.04165, 0, 4.92],
                  [0, 0, 0, 0, -5.21, -12.5, 0],
                  [0, 0, 0, 0, 0, 3.33, -3.33]])
    B = np.array([[0, 0], [12.5, 0], [0, 0], [0, 0], [0, 0], [0, 12.5], [0, 0]], dtype=float)
    C = np.array([[1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0]], dtype=float)
    return StateSpace(A, B, C)
