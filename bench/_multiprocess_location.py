"""The code location built with Dagster's default multiprocess executor: `bench.run_worker`'s
anchor (a process per step, each importing the code location)."""

from __future__ import annotations

import os

import dagster as dg

from marketdata_pipeline.defs.build import build_defs
from marketdata_pipeline.lib.settings import EVENT_BATCH_SIZE, load_settings

# As marketdata_pipeline/definitions.py sets it for the deployed location.
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)

defs = build_defs(load_settings(), executor=dg.multiprocess_executor)
