"""Benchmarks of marketdata_pipeline: `python -m bench` (or `make bench`) runs all six.

Importing the package fixes the environment first: partitions read MARKETDATA_START_DATE when
first imported, and the ten-year benchmark needs an early start; and the benchmarks only ever
talk to the simulator and their own throwaway Postgres, never to a configured API or database.
"""

import os
import sys

# Under pytest (the smoke tests) the suite's conftest has already fixed the start date for every
# test in the session: overriding it here would leak into other tests.
if "pytest" in sys.modules:
    os.environ.setdefault("MARKETDATA_START_DATE", "2000-01-03")
else:
    os.environ["MARKETDATA_START_DATE"] = "2000-01-03"
for _var in ("POLYGON_API_KEY", "MASSIVE_API_KEY", "POLYGON_BASE_URL", "MARKETDATA_DATABASE_URL"):
    os.environ.pop(_var, None)

import warnings  # noqa: E402

# Dagster flags `backfill_policy` and friends as beta on every import: noise in benchmark output.
warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview).*")
# pgserver's platformdirs complains once per process when XDG_RUNTIME_DIR is unset (as root).
warnings.filterwarnings("ignore", message=r"XDG_RUNTIME_DIR is not set")
