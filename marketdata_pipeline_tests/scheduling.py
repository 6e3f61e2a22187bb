"""The order the files of the suite go to the workers of `pytest -n N --dist loadfile`.

A worker takes a whole file at a time, so the suite ends when the last file started ends.
xdist's own order (most tests first) started the longest files, the e2e ones with a test or
three each, last: one worker ran a dev-server restart or the deployment while the other had
nothing left. Here the files measured longest go first, longest first, and the rest follow in
xdist's order; the short files at the end even the workers out.

The browser test and the deployment test share the package fixture `deployment` (a code server,
webserver and daemon): they are one unit of work, so one worker starts one deployment for both.
"""

from __future__ import annotations

from collections import Counter

import pytest

_TESTS = "marketdata_pipeline_tests/"

#: Seconds per file, measured in a whole-suite run (`--durations=0`, summed per file; see
#: "The suite" in docs/benchmarks.md; the last run, on a shared machine, scaled to the workers'
#: total of an unshared one). Only the order matters: a stale figure costs balance,
#: never a test.
MEASURED_SECONDS = {
    "bench/test_bench_smoke.py": 159,
    "e2e/test_docs_examples.py": 45,
    "reliability/test_truthful_ends.py": 62,
    "e2e/test_deployment.py": 60,
    "e2e/test_devserver_restart.py": 58,
    "reliability/test_resume.py": 46,
    "e2e/test_devserver.py": 44,
    "defs/corporate_actions/test_split_history.py": 43,
    "reliability/test_database_faults.py": 35,
    "test_cli.py": 30,
    "e2e/test_dev.py": 22,
    "reliability/test_api_faults.py": 18,
    "defs/reference/test_identity.py": 16,
    # Skipped where Chromium is missing (its deployment still starts: 16 s); ~56 s with it.
    "e2e/test_browser.py": 56,
}
#: Files that run on the worker of another file (a unit of work named after that file).
SAME_WORKER_AS = {"e2e/test_browser.py": "e2e/test_deployment.py"}


def unit_of(nodeid: str) -> str:
    """The unit of work of a test: its file, or the file it shares a worker with."""
    path = nodeid.split("::", 1)[0]
    short = path.removeprefix(_TESTS)
    return _TESTS + SAME_WORKER_AS[short] if short in SAME_WORKER_AS else path


def _seconds(files: set[str]) -> int:
    return sum(MEASURED_SECONDS.get(f.removeprefix(_TESTS), 0) for f in files)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker, order the tests by unit of work, the longest units first (every
    worker sorts the same collection the same way, as xdist requires)."""
    if not hasattr(config, "workerinput"):
        return  # a serial run keeps pytest's order
    files: dict[str, set[str]] = {}
    for item in items:
        files.setdefault(unit_of(item.nodeid), set()).add(item.nodeid.split("::", 1)[0])
    counts = Counter(unit_of(item.nodeid) for item in items)
    first_seen = {unit: i for i, unit in enumerate(dict.fromkeys(unit_of(i.nodeid) for i in items))}
    # Within a unit, files and tests keep their collection order (a stable sort).
    items.sort(
        key=lambda item: (
            -_seconds(files[unit := unit_of(item.nodeid)]),
            -counts[unit],
            first_seen[unit],
        )
    )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`--dist loadfile` by unit of work, in the order the workers collected (not re-sorted by
    test count)."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class UnitScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    config.option.loadscopereorder = False
    return UnitScheduling(config, log)
