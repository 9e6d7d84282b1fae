"""Build of the optional compiled kernels (everything else is in pyproject.toml).

``optional=True``: where no C compiler is found the install goes on and the pure-Python
leaf of the complex route runs instead, for real systems too (same results up to
rounding, slower below a few hundred states).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "lti_reduce._hammarling_leaf",
            sources=["lti_reduce/_hammarling_leaf.c", "lti_reduce/_real_hammarling.c"],
            optional=True,
        )
    ]
)
