"""Tracking rules (`marketdata.tracking_rules`), the universe they expand to, and the daily
ticker-reference bookkeeping (rows of `marketdata.reference_refresh`, shared with the splits
and dividends reads).

A rule is "every ticker the vendor lists in `market` of these `types`" (all types when
empty), optionally with the delisted ones for their listed life. It expands through the stored
identity (`securities`, `ticker_history`), so it follows new listings and delistings as the
daily reference refresh records them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.postgres.reference_refresh import last_refresh
from marketdata_pipeline.lib.postgres.reference_refresh import record_refresh as record_read
from marketdata_pipeline.lib.postgres.securities import tickers_in_window
from marketdata_pipeline.lib.symbols import AssetClass, Symbol, parse_symbol

MARKETS = ("stocks",)


@dataclass(frozen=True)
class TrackingRule:
    """One rule, as stored."""

    rule_id: int
    market: str
    types: tuple[str, ...]
    include_delisted: bool
    active: bool

    def describe(self) -> str:
        """`stocks CS,ETF (with delisted)`, for listings and messages."""
        types = ",".join(self.types) if self.types else "all types"
        return f"{self.market} {types}" + (" (with delisted)" if self.include_delisted else "")


def _types(types: Sequence[str]) -> list[str]:
    out = []
    for raw in types:
        value = raw.strip().upper()
        if not value or not value.replace("_", "").isalnum() or len(value) > 12:
            raise InputError(f"ticker type {raw!r}: expected a vendor type such as CS or ETF")
        out.append(value)
    return sorted(set(out))


def add_rule(
    conn: psycopg.Connection, market: str, types: Sequence[str], include_delisted: bool
) -> tuple[TrackingRule, str]:
    """Store (or re-activate) a rule; returns it and "added", "reactivated" or "already
    tracked"."""
    if market not in MARKETS:
        raise InputError(f"market {market!r}: rules are supported for {', '.join(MARKETS)}")
    wanted = _types(types)
    with conn.transaction():
        row = conn.execute(
            "SELECT rule_id, active FROM marketdata.tracking_rules"
            " WHERE market = %s AND types = %s AND include_delisted = %s FOR UPDATE",
            (market, wanted, include_delisted),
        ).fetchone()
        if row is None:
            rule_id = conn.execute(
                "INSERT INTO marketdata.tracking_rules (market, types, include_delisted)"
                " VALUES (%s, %s, %s) RETURNING rule_id",
                (market, wanted, include_delisted),
            ).fetchone()[0]
            outcome = "added"
        else:
            rule_id, active = row
            outcome = "already tracked" if active else "reactivated"
            conn.execute(
                "UPDATE marketdata.tracking_rules SET active = true, updated_at = now()"
                " WHERE rule_id = %s",
                (rule_id,),
            )
    return TrackingRule(rule_id, market, tuple(wanted), include_delisted, True), outcome


def list_rules(conn: psycopg.Connection, *, active_only: bool = True) -> list[TrackingRule]:
    """The stored rules, oldest first."""
    where = "WHERE active" if active_only else ""
    rows = conn.execute(
        "SELECT rule_id, market, types, include_delisted, active FROM marketdata.tracking_rules"
        f" {where} ORDER BY rule_id"
    ).fetchall()
    return [TrackingRule(r[0], r[1], tuple(r[2]), r[3], r[4]) for r in rows]


def remove_rule(conn: psycopg.Connection, rule_id: int) -> bool:
    """Deactivate a rule (history stays); False when no active rule has that id."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE marketdata.tracking_rules SET active = false, updated_at = now()"
            " WHERE rule_id = %s AND active RETURNING rule_id",
            (rule_id,),
        ).fetchone()
    return row is not None


_RULE_SECURITIES = """
    SELECT s.security_id FROM marketdata.securities s
    WHERE s.market = %(market)s
      AND (cardinality(%(types)s::text[]) = 0 OR s.type = ANY(%(types)s::text[]))
      AND (s.active OR %(include_delisted)s)
"""


def rule_count(conn: psycopg.Connection, rule: TrackingRule) -> int:
    """How many securities the rule expands to in the stored reference."""
    row = conn.execute(
        f"SELECT count(*) FROM ({_RULE_SECURITIES}) x",
        {
            "market": rule.market,
            "types": list(rule.types),
            "include_delisted": rule.include_delisted,
        },
    ).fetchone()
    return int(row[0])


def rule_tickers(
    conn: psycopg.Connection, first: dt.date, last: dt.date, rule_list: Sequence[TrackingRule]
) -> set[str]:
    """Every ticker the rules' securities traded under on some day of [first, last]."""
    out: set[str] = set()
    for rule in rule_list:
        rows = conn.execute(
            "SELECT DISTINCT h.ticker FROM marketdata.ticker_history h"
            f" WHERE h.security_id IN ({_RULE_SECURITIES})"
            " AND h.first_day <= %(last)s AND (h.last_day IS NULL OR h.last_day >= %(first)s)",
            {
                "market": rule.market,
                "types": list(rule.types),
                "include_delisted": rule.include_delisted,
                "first": first,
                "last": last,
            },
        ).fetchall()
        out.update(r[0] for r in rows)
    return out


def refreshed_on(conn: psycopg.Connection, kind: str, scope: str) -> dt.date | None:
    """The day this kind of reference data (for `scope`) was last loaded, or None."""
    last = last_refresh(conn, kind, scope)
    return None if last is None else last.refreshed_on


def record_refresh(
    conn: psycopg.Connection,
    kind: str,
    scope: str,
    day: dt.date,
    requests: int,
    *,
    records: int = 0,
    watermark: dt.datetime | None = None,
    resume_after: str | None = None,
) -> None:
    """Remember that `kind` (for `scope`) was loaded on `day` with `requests` requests (a
    ticker load covers the market as of that day), and where the next incremental load
    resumes."""
    record_read(
        conn,
        kind,
        scope,
        refreshed_on=day,
        covers=(day, day),
        requests=requests,
        records=records,
        watermark=watermark,
        resume_after=resume_after,
    )


def universe_symbols(
    conn: psycopg.Connection,
    chosen: Sequence[Symbol],
    first: dt.date,
    last: dt.date,
    *,
    rules: bool = True,
) -> list[Symbol]:
    """The stock symbols a run over [first, last] fetches: `chosen`, every other ticker their
    companies traded under in the window, and (with `rules`) every ticker the active tracking
    rules expand to there. Tickers that are not valid symbols (the vendor lists a few odd
    ones) are left out."""
    tickers = tickers_in_window(conn, [s.symbol for s in chosen], first, last)
    if rules:
        tickers |= rule_tickers(conn, first, last, list_rules(conn))
    out = set(chosen)
    for ticker in tickers:
        try:
            out.add(parse_symbol(ticker, AssetClass.STOCK))
        except InputError:
            continue
    return sorted(out)


def rule_symbols(
    conn: psycopg.Connection, rule_ids: Sequence[int], first: dt.date, last: dt.date
) -> list[Symbol]:
    """The stock symbols the active rules `rule_ids` expand to over [first, last] (a new
    rule's history run); ids of no active rule expand to nothing."""
    wanted = set(rule_ids)
    chosen = [rule for rule in list_rules(conn) if rule.rule_id in wanted]
    return sorted(_valid(rule_tickers(conn, first, last, chosen)))


def _valid(tickers: set[str]) -> set[Symbol]:
    out = set()
    for ticker in tickers:
        try:
            out.add(parse_symbol(ticker, AssetClass.STOCK))
        except InputError:
            continue
    return out
