"""One run of the code location's candle job of ASSET over a window, in its own process.

`python -m marketdata_pipeline_tests.reliability._run_candles_job ASSET START END SYMBOL...`
builds the definitions exactly as the code location does (`build_defs(load_settings())`, so
every setting comes from the environment), runs the job on the Dagster instance in
`DAGSTER_HOME` with range tags over START..END (inclusive; partition keys of ASSET) and the
given symbols of ASSET with a forced range plan, and exits 0 on success, 1 on a failed run.
The resumability tests kill it half-way with SIGKILL and run it again.
"""

from __future__ import annotations

import datetime as dt
import sys

import dagster as dg

from marketdata_pipeline.defs.build import build_defs
from marketdata_pipeline.defs.candles.jobs import CANDLE_JOB_BY_CLASS
from marketdata_pipeline.lib.candles.schema import ASSET_CLASS_BY_NAME, candle_run_config
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.settings import load_settings


def main(argv: list[str]) -> int:
    asset, start, end, *symbols = argv
    defs = build_defs(load_settings())
    window = CandleWindow(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    with dg.DagsterInstance.get() as instance:
        result = defs.get_job_def(
            CANDLE_JOB_BY_CLASS[ASSET_CLASS_BY_NAME[asset]]
        ).execute_in_process(
            run_config=candle_run_config({asset: symbols}, extra={asset: {"strategy": "range"}}),
            tags=window.run_tags(),
            instance=instance,
            raise_on_error=False,
        )
    print("SUCCESS" if result.success else "FAILED", flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
