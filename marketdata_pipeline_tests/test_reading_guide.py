"""docs/reading.md: its Python examples run as written, in order, on a store like the demo's.

The store holds the demo's symbols over the last weeks (real Dagster runs from the simulator);
the guide's `marketdata ...` shell lines run in-process in the same directory first, in the
document's order, so the Parquet examples read what the export wrote. The SQL blocks and the
shell lines also run in the docs-examples test (e2e/test_docs_examples.py) after `make demo`.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
import shlex
from pathlib import Path

from marketdata_pipeline.lib.calendar import last_complete_day
from marketdata_pipeline_tests.helpers import (
    crypto_daily_candles,
    materialise,
    stock_daily_candles,
    stock_daily_returns_stored,
)

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "reading.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[str, int, str]]:
    """(language, line, body) of every fenced block of the guide, in order."""
    text = GUIDE.read_text()
    return [
        (m.group(1), text[: m.start()].count("\n") + 2, m.group(2)) for m in BLOCK.finditer(text)
    ]


def test_the_guide_has_python_sql_shell_and_parquet_examples():
    languages = [language for language, _, _ in blocks()]
    assert {"python", "sql", "bash"} <= set(languages)
    assert any("duckdb" in body for _, _, body in blocks())


def test_every_python_example_of_the_reading_guide_runs(
    sim, resources, database_url, cli, monkeypatch, tmp_path, capsys
):
    end = last_complete_day()
    result = materialise(
        end - dt.timedelta(days=40),
        end,
        resources,
        assets=[stock_daily_candles, stock_daily_returns_stored, crypto_daily_candles],
        symbols={
            "stock_daily_candles": ["AAPL", "MSFT", "NVDA", "SPY"],
            "crypto_daily_candles": ["BTCUSD", "ETHUSD"],
        },
    )
    assert result.success
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    ran, out = 0, ""
    for language, line, body in blocks():
        where = f"{GUIDE.name}:{line}"
        if language == "bash":
            for command in body.splitlines():
                if command.startswith("marketdata "):
                    code, _, err = cli(*shlex.split(command)[1:])
                    assert code == 0, f"{where}: {command}: {err}"
        elif language == "python":
            if "import duckdb" in body and not importlib.util.find_spec("duckdb"):
                continue  # duckdb is not a dependency of the project
            exec(compile(body, where, "exec"), namespace)
            ran += 1
            out += capsys.readouterr().out  # (the `cli` runs read the capture too)
    assert ran >= 6
    assert "start '2024-02-30' is not a date" in out
    assert "4 stocks on" in out
    assert namespace["count"] > 0
    assert (tmp_path / "marketdata-parquet" / "stock_daily_candles").is_dir()
