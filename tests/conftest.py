"""Test settings: under CI (CI set in the environment) hypothesis draws the same examples on
every run, so that a red build can be reproduced; locally it explores new ones each run."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
