"""The Dagster code location (`workspace.yaml`): the settings are read here, once."""

from __future__ import annotations

import os

from marketdata_pipeline.defs.build import build_defs
from marketdata_pipeline.lib.settings import EVENT_BATCH_SIZE, load_settings

# Dagster reads this at every event, in whichever process records it: set here, it reaches the
# run worker that imports this code location. A single-run range records two events per
# partition; written in batches they cost a fraction of one write each (docs/benchmarks.md).
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)

defs = build_defs(load_settings())
