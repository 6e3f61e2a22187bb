"""`marketdata symbols` rules and resolve: bad input is refused clearly, before any write."""

from __future__ import annotations

import pytest

from marketdata_pipeline_tests.helpers import query


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("add", "--market", "bonds"), "market 'bonds': rules are supported for stocks"),
        (("add", "--market", "stocks", "--type", "C S"), "ticker type 'C S'"),
        (("add", "AAPL", "--market", "stocks"), "a rule takes --market"),
        (("add", "--type", "CS"), "a rule takes --market"),
        (("add",), "name a SYMBOL to track"),
        (("remove",), "name a SYMBOL to stop tracking"),
        (("resolve", "META", "--on", "2024-13-01"), "--on '2024-13-01': expected a date"),
        (("resolve", "META", "--on", "2024-03-01"), "no security in the store ever traded"),
    ],
)
def test_bad_rule_and_resolve_input_is_refused(cli, database_url, args, expected):
    code, _out, err = cli("symbols", *args)
    assert code == 2, err
    assert expected in err
    assert query(database_url, "SELECT count(*) FROM marketdata.tracking_rules") == [(0,)]


def test_rules_are_added_once_listed_and_removed(cli, database_url):
    code, out, _ = cli("symbols", "add", "--market", "stocks", "--type", "etf", "--type", "CS")
    assert code == 0 and out.startswith("rule 1 (stocks CS,ETF): added")
    code, out, _ = cli("symbols", "add", "--market", "stocks", "--type", "ETF", "--type", "CS")
    assert "already tracked" in out
    assert "rule 1: stocks CS,ETF -> 0 securities" in cli("symbols", "list")[1]
    assert cli("symbols", "remove", "--rule", "1")[1].startswith("rule 1: removed")
    assert cli("symbols", "remove", "--rule", "1")[1].startswith("rule 1: no such rule")
    assert "rule 1" not in cli("symbols", "list")[1]
    code, out, _ = cli("symbols", "add", "--market", "stocks", "--type", "CS", "--type", "ETF")
    assert "re-activated" in out
