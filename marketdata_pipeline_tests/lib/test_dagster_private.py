"""The Dagster private APIs the project relies on still exist where `lib/dagster_private.py`
imports them, and no other production module imports a private Dagster module.

An upgrade of Dagster that moves one of them fails here, naming it, instead of in a run.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import marketdata_pipeline
from marketdata_pipeline.lib import dagster_private

PACKAGE = Path(marketdata_pipeline.__file__).parent
PRIVATE_IMPORT = re.compile(r"^\s*(from|import)\s+dagster\._", re.MULTILINE)


def test_every_private_name_is_importable_and_is_dagsters_own():
    assert dagster_private.__all__, "the module lists what it re-exports"
    for name in dagster_private.__all__:
        value = getattr(dagster_private, name)
        source = importlib.import_module(dagster_private._SOURCES[name])
        assert source.__name__.startswith("dagster._"), (name, source.__name__)
        assert getattr(source, name) is value, name
        if isinstance(value, type):  # a class: still Dagster's own, not an alias of another
            assert value.__module__.startswith("dagster."), (name, value.__module__)


def test_no_other_production_module_imports_a_private_dagster_module():
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "dagster_private.py" and PRIVATE_IMPORT.search(path.read_text())
    ]
    assert offenders == [], f"import these through lib/dagster_private.py: {offenders}"
