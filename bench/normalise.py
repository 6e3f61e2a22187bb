"""Benchmark 2, normalisation: Polygon JSON bodies to candle frames, speed and memory.

- **Input**: realistic range-aggregate response bodies (the simulator's exact bytes: envelope,
  `results` objects in the vendor's key order, `request_id`), e.g. 400 bodies x 2,500 bars.
- **Measured**: `parse_page` + `normalise_bars` per body, then one `pl.concat`, as
  `PolygonClient.fetch_range` and the resource do. Bars per second (best of a few passes), and the
  peak extra memory of one pass in a fresh child process: its `VmHWM` (the kernel's high-water
  mark of resident memory, which sees polars' Rust allocations that tracemalloc does not) minus
  its RSS once the bodies are loaded, compared with the final frame's `estimated_size()`. The
  median of three children is reported: the allocator's reuse of freed pages varies a little.
- **Anchor**: `json.loads` + `pl.DataFrame(results)` per body (the obvious way), same bodies.

Targets: >= 500,000 bars/s; extra memory <= 3x the final frame's estimated size.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import tempfile
from pathlib import Path

import polars as pl

from bench.common import (
    Figure,
    Timer,
    current_rss_bytes,
    emit,
    module_main,
    peak_rss_bytes,
    run_child,
)
from marketdata_pipeline.lib.polygon.payload import normalise_bars, parse_page
from marketdata_pipeline.lib.symbols import AssetClass
from polygon_simulator import market
from polygon_simulator.pages import RangeBody, build_range_page

FULL = {"bodies": 400, "bars_per_body": 2_500, "repeats": 2, "memory_repeats": 3}
SMOKE = {"bodies": 6, "bars_per_body": 200, "repeats": 1, "memory_repeats": 1}
TARGET_BARS_PER_SECOND = 500_000
TARGET_MEMORY_RATIO = 3.0


def range_bodies(count: int, bars_per_body: int) -> list[tuple[str, bytes]]:
    """`count` (ticker, body) pairs of `bars_per_body` daily bars each, as the API sends them."""
    out = []
    for i, ticker in enumerate(market.stock_universe(count)):
        page = build_range_page(
            ticker,
            dt.date(1995, 1, 3),
            dt.date(2025, 12, 31),
            sort="asc",
            limit=bars_per_body,
            revision=0,
            revision_from=None,
        )
        body = RangeBody(ticker, True, page, request_id=f"{i:032x}", next_url=None)
        out.append((ticker, body.to_bytes()))
    return out


def normalise_all(bodies: list[tuple[str, bytes]]) -> pl.DataFrame:
    """What the client does per page, then the resource's concat."""
    fetched_at = dt.datetime.now(dt.UTC)
    frames = []
    for ticker, body in bodies:
        page = parse_page(body, request=ticker)
        frames.append(
            normalise_bars(
                page.bars,
                asset_class=AssetClass.STOCK,
                endpoint="range",
                symbol=ticker,
                adjusted=True,
                provisional=page.provisional,
                fetched_at=fetched_at,
                source="polygon:range",
            )
        )
    return pl.concat(frames, how="vertical")


def anchor_all(bodies: list[tuple[str, bytes]]) -> pl.DataFrame:
    """The obvious way: the json module, then a frame from the list of dicts."""
    frames = [pl.DataFrame(json.loads(body)["results"]) for _, body in bodies]
    return pl.concat(frames, how="vertical")


def _save(bodies: list[tuple[str, bytes]], directory: Path) -> Path:
    path = directory / "bodies.bin"
    index = []
    with path.open("wb") as out:
        for ticker, body in bodies:
            out.write(body)
            index.append([ticker, len(body)])
    (directory / "index.json").write_text(json.dumps(index))
    return path


def _child(args: dict) -> dict:
    """In a fresh process: load the bodies, then measure one pass's peak extra RSS."""
    directory = Path(args["dir"])
    index = json.loads((directory / "index.json").read_text())
    bodies = []
    with (directory / "bodies.bin").open("rb") as source:
        for ticker, size in index:
            bodies.append((ticker, source.read(size)))  # one body at a time: no transient copy
    # Warm up on one body first: polars' thread pool and allocator arenas are set up once per
    # process and are not part of the cost of normalising more bars.
    (normalise_all if args["mode"] == "ours" else anchor_all)(bodies[:1])
    gc.collect()
    base = current_rss_bytes()
    high_water_before = peak_rss_bytes()
    frame = normalise_all(bodies) if args["mode"] == "ours" else anchor_all(bodies)
    return {
        "base_rss": base,
        "peak_rss": peak_rss_bytes(),
        "high_water_before": high_water_before,
        "frame_bytes": frame.estimated_size(),
        "rows": frame.height,
    }


def run(
    *,
    bodies: int = FULL["bodies"],
    bars_per_body: int = FULL["bars_per_body"],
    repeats: int = FULL["repeats"],
    memory_repeats: int = FULL["memory_repeats"],
) -> list[Figure]:
    """Measure and print the normalisation figures; return them."""
    figures: list[Figure] = []
    data = range_bodies(bodies, bars_per_body)
    n_bars = bodies * bars_per_body
    mb = sum(len(b) for _, b in data) / 1e6
    size = f"{bodies} bodies, {mb:.0f} MB of JSON"
    emit(Figure("normalise.bars", n_bars, "bars", note=size), figures)

    times = []
    for _ in range(repeats):
        gc.collect()
        with Timer() as timer:
            frame = normalise_all(data)
        times.append(timer.seconds)
        del frame
    gc.collect()
    with Timer() as anchor_timer:
        anchor_frame = anchor_all(data)
    del anchor_frame
    ours_rate = n_bars / min(times)
    anchor_rate = n_bars / anchor_timer.seconds
    anchor_note = f"json.loads + pl.DataFrame(results): {anchor_timer.seconds:.2f} s"
    emit(Figure("normalise.anchor", anchor_rate, "bars/s", note=anchor_note), figures)
    emit(
        Figure(
            "normalise.parse_normalise",
            ours_rate,
            "bars/s",
            ratio=ours_rate / anchor_rate,
            anchor="json.loads + pl.DataFrame",
            target=f">= {TARGET_BARS_PER_SECOND:,} bars/s",
            met=ours_rate >= TARGET_BARS_PER_SECOND,
            note=f"best of {repeats}: {min(times):.2f} s",
        ),
        figures,
    )

    with tempfile.TemporaryDirectory(prefix="md-bench-norm-") as tmp:
        _save(data, Path(tmp))
        del data
        gc.collect()
        runs = [
            run_child("bench.normalise", {"dir": tmp, "mode": "ours"}).payload
            for _ in range(memory_repeats)
        ]
        anchor = run_child("bench.normalise", {"dir": tmp, "mode": "anchor"}).payload
    extras = sorted(r["peak_rss"] - r["base_rss"] for r in runs)
    extra = extras[len(extras) // 2]
    ours = runs[0]
    ratio = extra / ours["frame_bytes"]
    note = "child's VmHWM minus its RSS with the bodies loaded"
    if len(extras) > 1:
        note += f"; median of {len(extras)}, range {extras[0] / 1e6:.0f}-{extras[-1] / 1e6:.0f} MB"
    if any(r["peak_rss"] <= r["high_water_before"] for r in runs):
        note += "; WARNING: the peak was reached while loading, so this understates"
    final_mb = ours["frame_bytes"] / 1e6
    emit(Figure("normalise.final_frame", final_mb, "MB", note="estimated_size()"), figures)
    emit(
        Figure(
            "normalise.peak_extra_memory",
            extra / 1e6,
            "MB",
            ratio=ratio,
            anchor="final frame's estimated_size()",
            target=f"<= {TARGET_MEMORY_RATIO:.0f}x",
            met=ratio <= TARGET_MEMORY_RATIO,
            note=note,
        ),
        figures,
    )
    anchor_extra = anchor["peak_rss"] - anchor["base_rss"]
    emit(
        Figure(
            "normalise.anchor_peak_extra_memory",
            anchor_extra / 1e6,
            "MB",
            ratio=anchor_extra / max(extra, 1),
            anchor="ours",
        ),
        figures,
    )
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.normalise [--smoke]`."""
    return module_main(__doc__, run, smoke=SMOKE, full=FULL, argv=argv, child=_child)


if __name__ == "__main__":
    main()
