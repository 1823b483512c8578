"""Hypothesis profiles. `ci` (the default) is reproducible: derandomized, no deadline
(shared CI machines are slow and noisy), and a failing example is printed as a blob to
replay with `@reproduce_failure`. `HYPOTHESIS_PROFILE=dev` explores fresh random
examples on every run."""

import os

from hypothesis import settings

# botocore's credential chain ends at the instance-metadata service: never ask it here
# (no test touches a network).
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
