"""Test-wide settings.

torch runs single-threaded in tests: pytest-xdist already runs one worker per core, and
under load OpenMP's spinning threads make small tensor operations orders of magnitude
slower (measured: 66 ms instead of 0.05 ms per cross-entropy on 2 loaded cores).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

try:  # torch is an extra; the compiler's tests run without it
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
