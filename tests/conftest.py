"""Test configuration: one BLAS thread, hypothesis profiles, a count of drawn systems.

Hypothesis profile: ``LTI_REDUCE_HYPOTHESIS_PROFILE=ci`` (set by .ci/run) or ``dev`` (default).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hypothesis import HealthCheck, settings  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

threadpool_limits(1)

settings.register_profile("dev", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=1200, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("LTI_REDUCE_HYPOTHESIS_PROFILE", "dev"))



def pytest_terminal_summary(terminalreporter):
    from tests.core import strategies  # noqa: F401  (counter lives there)
    counts = strategies.COUNTS
    if counts["systems"]:
        terminalreporter.write_line(
            f"hypothesis: {counts['systems']} random systems drawn, "
            f"{counts['bound_violations']} bound violations, {counts['nonfinite']} non-finite results")
    if counts["bound_checks"]:
        terminalreporter.write_line(
            f"oracle: {counts['bound_checks']} reductions checked against error_bound + rounding_allowance, "
            f"worst ratio {counts['worst_bound_ratio']:.3g}")
