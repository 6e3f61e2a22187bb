"""`bench.crypto_scale` still runs, at a tiny size, against the suite's Postgres and simulator
(no timing asserted: the rows each run stores and the anchor copies are exact)."""

from __future__ import annotations

import math

from bench import crypto_scale
from bench.common import BenchPostgres


def test_crypto_scale_compares_a_grouped_crypto_backfill_with_bare_copy(pg_server, sim):
    figures = crypto_scale.run(pg=BenchPostgres(pg_server), sim=sim, **crypto_scale.SMOKE)
    by_name = {f.name: f for f in figures}
    assert set(by_name) == {
        "crypto_scale.1x.run",
        "crypto_scale.10x.run",
        "crypto_scale.growth_10x",
        "crypto_scale.bare_copy",
        "crypto_scale.e2e_vs_bare_copy",
    }
    assert all(math.isfinite(f.value) and f.value > 0 for f in figures)
    # 2 and 20 pairs x 10 UTC days, every bar stored; the anchor copies the 10x run's rows.
    assert "2 pairs x 2024-01-22..2024-01-31 (20 rows" in by_name["crypto_scale.1x.run"].note
    assert "20 pairs x 2024-01-22..2024-01-31 (200 rows" in by_name["crypto_scale.10x.run"].note
    assert "200 rows into" in by_name["crypto_scale.bare_copy"].note
