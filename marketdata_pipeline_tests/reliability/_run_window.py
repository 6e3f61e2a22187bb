"""One Dagster run of `stock_daily_candles` over a window, in its own process.

`python -m marketdata_pipeline_tests.reliability._run_window DATABASE_URL BASE_URL API_KEY
START END SYMBOL...` materialises the window against the simulator at BASE_URL and exits 0 on
success, 1 on a failed run. It prints READY once imported and starts the run when a line
arrives on stdin. The concurrency tests start several at once (Dagster's in-process
execution is not thread safe, processes are what real concurrent runs are anyway).
"""

from __future__ import annotations

import datetime as dt
import sys

from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline_tests.helpers import materialise, stock_daily_candles


def main(argv: list[str]) -> int:
    database_url, base_url, api_key, start, end, *symbols = argv
    database = PostgresDatabase(url=database_url)
    resources = {
        "polygon": PolygonResource(
            api_key=api_key,
            base_url=base_url,
            requests_per_minute=60_000,
            backoff_initial_seconds=0.01,
            backoff_max_seconds=0.1,
            max_attempts=4,
        ),
        "database": database,
        "candle_io_manager": PostgresCandleIOManager(database=database),
    }
    # Imports take seconds: report ready, then start when told, so that concurrent runs
    # really overlap.
    print("READY", flush=True)
    sys.stdin.readline()
    result = materialise(
        dt.date.fromisoformat(start),
        dt.date.fromisoformat(end),
        resources,
        assets=[stock_daily_candles],
        symbols={"stock_daily_candles": symbols},
    )
    print("SUCCESS" if result.success else "FAILED", flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
