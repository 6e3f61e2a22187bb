"""The Dagster code location (`workspace.yaml`): the settings are read here, once."""

from __future__ import annotations

from marketdata_pipeline.defs.build import build_defs
from marketdata_pipeline.lib.settings import load_settings

defs = build_defs(load_settings())
