"""`python -m bench` (`make bench`): every benchmark, one line per figure, ratios in-run.

Options: `--smoke` for tiny sizes (seconds, to check they still work), `--only NAME...` to run
some of them, `--json PATH` to save every figure with the machine description.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

from bench import (
    backfill_overhead,
    crypto_scale,
    daily_update,
    fixed_cost,
    ingest,
    market_scale,
    memory,
    normalise,
    paid_tier,
    partition_metadata,
    partition_overhead,
    reading,
    reference_daily,
    reference_maintenance,
    requests,
    resume,
    returns_refresh,
    run_worker,
    scale,
    sensor_tick,
)
from bench.common import Figure, figures_as_json, machine_description, quiet_logs, temp_postgres

BENCHMARKS = {
    "ingest": ingest,
    "normalise": normalise,
    "requests": requests,
    "paid_tier": paid_tier,
    "backfill_overhead": backfill_overhead,
    "scale": scale,
    "partition_overhead": partition_overhead,
    "partition_metadata": partition_metadata,
    "memory": memory,
    "market_scale": market_scale,
    "resume": resume,
    "sensor_tick": sensor_tick,
    "reference_daily": reference_daily,
    "reference_maintenance": reference_maintenance,
    "reading": reading,
    "returns_refresh": returns_refresh,
    "fixed_cost": fixed_cost,
    "crypto_scale": crypto_scale,
    "daily_update": daily_update,
    "run_worker": run_worker,
}
_USES_POSTGRES = {
    "crypto_scale",
    "daily_update",
    "ingest",
    "backfill_overhead",
    "scale",
    "partition_overhead",
    "memory",
    "market_scale",
    "resume",
    "sensor_tick",
    "reference_daily",
    "reference_maintenance",
    "reading",
    "returns_refresh",
    "fixed_cost",
    "run_worker",
}


def main(argv: list[str] | None = None) -> list[Figure]:
    """Run the chosen benchmarks on one throwaway Postgres; print and optionally save figures."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), metavar="NAME")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    quiet_logs()
    chosen = args.only or list(BENCHMARKS)
    figures: list[Figure] = []
    began = time.perf_counter()
    with temp_postgres() as pg:
        machine = machine_description(pg)
        print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), flush=True)
        print("command: python -m bench" + (" --smoke" if args.smoke else ""), flush=True)
        for name in chosen:
            module = BENCHMARKS[name]
            sizes = dict(module.SMOKE if args.smoke else module.FULL)
            if name in _USES_POSTGRES:
                sizes["pg"] = pg
            print(f"\n== {name}", flush=True)
            with_time = time.perf_counter()
            figures += module.run(**sizes)
            print(f"({name} took {time.perf_counter() - with_time:.0f} s)", flush=True)
    total = time.perf_counter() - began
    missed = [f.name for f in figures if f.target and not f.met]
    print(f"\nall benchmarks took {total:.0f} s; targets missed: {', '.join(missed) or 'none'}")
    if args.smoke:
        print("(smoke sizes: the figures only show that the benchmarks run; targets mean nothing)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "machine": machine,
                    "smoke": args.smoke,
                    "total_seconds": round(total, 1),
                    "figures": figures_as_json(figures),
                },
                indent=2,
            )
        )
    return figures


if __name__ == "__main__":
    main()
