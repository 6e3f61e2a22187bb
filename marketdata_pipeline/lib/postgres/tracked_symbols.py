"""`marketdata.tracked_symbols`: the universe the pipeline keeps, and each symbol's status.

Rows are canonical symbols (no `X:`; case as `lib/symbols.canonical_case` says) with their
asset class, an active flag (removal deactivates; history stays), timestamps, a `change_seq` the
sensor uses as its cursor, and the outcome of the latest run for that symbol (`status`,
`last_success_day`, `last_attempt_at`, `last_error`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.symbols import (
    CRYPTO_PREFIX,
    AssetClass,
    Symbol,
    canonical_case,
    parse_symbol,
)

AddOutcome = Literal["added", "reactivated", "already tracked"]
RemoveOutcome = Literal["removed", "already removed", "not tracked"]
MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True)
class SymbolChange:
    """Result of an add or remove, for the command line to report."""

    symbol: Symbol
    outcome: AddOutcome | RemoveOutcome


def _lock_active(conn: psycopg.Connection, sym: Symbol) -> bool | None:
    """The row's active flag, locked for this transaction; None when the symbol is untracked."""
    row = conn.execute(
        "SELECT active FROM marketdata.tracked_symbols WHERE asset_class=%s AND symbol=%s"
        " FOR UPDATE",
        (sym.asset_class.value, sym.symbol),
    ).fetchone()
    return None if row is None else bool(row[0])


def add_symbols(conn: psycopg.Connection, symbols: list[Symbol]) -> list[SymbolChange]:
    """Track `symbols` (one transaction): new rows are added, inactive ones re-activated."""
    changes = []
    with conn.transaction():
        for sym in symbols:
            active = _lock_active(conn, sym)
            if active is None:
                conn.execute(
                    "INSERT INTO marketdata.tracked_symbols (symbol, asset_class) VALUES (%s, %s)",
                    (sym.symbol, sym.asset_class.value),
                )
                changes.append(SymbolChange(sym, "added"))
            elif not active:
                # `pending` means never fetched: a symbol with a last day keeps its status.
                conn.execute(
                    "UPDATE marketdata.tracked_symbols SET active = true, status = CASE"
                    " WHEN last_success_day IS NULL THEN 'pending' ELSE status END"
                    " WHERE asset_class=%s AND symbol=%s",
                    (sym.asset_class.value, sym.symbol),
                )
                changes.append(SymbolChange(sym, "reactivated"))
            else:
                changes.append(SymbolChange(sym, "already tracked"))
    return changes


def remove_symbols(conn: psycopg.Connection, symbols: list[Symbol]) -> list[SymbolChange]:
    """Deactivate `symbols` (one transaction); their stored candles are kept."""
    changes = []
    with conn.transaction():
        for sym in symbols:
            active = _lock_active(conn, sym)
            if active is None:
                changes.append(SymbolChange(sym, "not tracked"))
            elif not active:
                changes.append(SymbolChange(sym, "already removed"))
            else:
                conn.execute(
                    "UPDATE marketdata.tracked_symbols SET active = false"
                    " WHERE asset_class=%s AND symbol=%s",
                    (sym.asset_class.value, sym.symbol),
                )
                changes.append(SymbolChange(sym, "removed"))
    return changes


def find_symbols(conn: psycopg.Connection, raw: str) -> list[Symbol]:
    """Tracked symbols matching a user-typed symbol in any asset class (for `remove`)."""
    text = raw.strip()
    if text.upper().startswith("X:"):
        text = text[2:]
    # The stock form keeps a vendor ticker's case (`KIMpL`); the crypto form is upper case.
    candidates = sorted({canonical_case(text, AssetClass.STOCK), text.upper()})
    rows = conn.execute(
        "SELECT symbol, asset_class FROM marketdata.tracked_symbols WHERE symbol = ANY(%s)"
        " ORDER BY asset_class DESC, symbol",
        (candidates,),
    ).fetchall()
    return [Symbol(r[0], AssetClass(r[1])) for r in rows]


def tracked_classes(conn: psycopg.Connection) -> dict[str, AssetClass]:
    """Asset class of every tracked symbol (the first, when a symbol is tracked in both)."""
    classes: dict[str, AssetClass] = {}
    for symbol, cls in conn.execute(
        "SELECT symbol, asset_class FROM marketdata.tracked_symbols ORDER BY asset_class DESC"
    ).fetchall():
        classes.setdefault(symbol, AssetClass(cls))
    return classes


def list_symbols(
    conn: psycopg.Connection, *, include_inactive: bool = True
) -> list[dict[str, Any]]:
    """Every tracked symbol with its status, ordered by asset class then symbol."""
    where = "" if include_inactive else "WHERE active"
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT symbol, asset_class, active, status, last_success_day, last_attempt_at,"
            " last_error, added_at, updated_at FROM marketdata.tracked_symbols "
            f"{where} ORDER BY asset_class DESC, symbol"
        )
        return list(cur.fetchall())


def active_symbols(
    conn: psycopg.Connection, asset_class: AssetClass
) -> tuple[list[Symbol], dict[str, str]]:
    """Active symbols of one class, plus rows that fail validation (symbol -> why).

    Rows can be added by plain SQL, so they are validated on the way out as well.
    """
    rows = conn.execute(
        "SELECT symbol FROM marketdata.tracked_symbols WHERE active AND asset_class = %s"
        " ORDER BY symbol",
        (asset_class.value,),
    ).fetchall()
    good, bad = [], {}
    for (raw,) in rows:
        try:
            good.append(parse_symbol(raw, asset_class))
        except InputError as exc:
            bad[raw] = str(exc)
    return good, bad


def changes_since(conn: psycopg.Connection, seq: int) -> tuple[list[tuple[str, str]], int]:
    """Active (symbol, asset_class) rows added or re-activated after `seq`, and the newest seq."""
    rows = conn.execute(
        "SELECT symbol, asset_class, change_seq FROM marketdata.tracked_symbols"
        " WHERE change_seq > %s AND active ORDER BY change_seq",
        (seq,),
    ).fetchall()
    newest = conn.execute(
        "SELECT coalesce(max(change_seq), 0) FROM marketdata.tracked_symbols"
    ).fetchone()
    return [(r[0], r[1]) for r in rows], max(seq, int(newest[0]) if newest else 0)


def request_history_again(
    conn: psycopg.Connection, asset_class: AssetClass, symbols: list[str]
) -> int:
    """Make the tracked-symbols sensor request these symbols' history again; return how many.

    For a history run that did not finish (the server stopped under it). Bumping `change_seq`
    is exactly what adding the symbol did, so the sensor sees them as new on its next tick and
    requests them under a new run key; inactive symbols are left alone. Commits.
    """
    if not symbols:
        return 0
    with conn.transaction():
        cursor = conn.execute(
            "UPDATE marketdata.tracked_symbols"
            " SET change_seq = nextval('marketdata.tracked_symbols_change_seq')"
            " WHERE active AND asset_class = %s AND symbol = ANY(%s)",
            (asset_class.value, sorted(set(symbols))),
        )
        return cursor.rowcount


def record_success(
    conn: psycopg.Connection, asset_class: AssetClass, symbols: list[str], last_day: dt.date
) -> None:
    """Mark `symbols` fetched and stored through `last_day` (call inside the write transaction)."""
    if not symbols:
        return
    conn.execute(
        "UPDATE marketdata.tracked_symbols SET status = 'ok', last_error = NULL,"
        " last_attempt_at = now(),"
        " last_success_day = GREATEST(coalesce(last_success_day, %s), %s)"
        " WHERE asset_class = %s AND symbol = ANY(%s)",
        (last_day, last_day, asset_class.value, list(symbols)),
    )


def record_failures(
    conn: psycopg.Connection, asset_class: AssetClass, errors: dict[str, str]
) -> None:
    """Store each failed symbol's error message (its last success is kept)."""
    with conn.transaction():
        for symbol, message in sorted(errors.items()):
            conn.execute(
                "UPDATE marketdata.tracked_symbols SET status = 'error', last_error = %s,"
                " last_attempt_at = now() WHERE asset_class = %s AND symbol = %s",
                (message[:MAX_ERROR_LENGTH], asset_class.value, symbol),
            )


def failed_symbols(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(symbol, asset class, last error) of the active symbols whose last run failed."""
    rows = conn.execute(
        "SELECT symbol, asset_class, last_error FROM marketdata.tracked_symbols"
        " WHERE active AND status = 'error' ORDER BY asset_class, symbol"
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def refuse_ambiguous_add(conn: psycopg.Connection, raws: list[str], symbols: list[Symbol]) -> None:
    """Refuse adding a plain-typed symbol as a stock when the same text is tracked as crypto.

    `symbols add BTCUSD` means the tracked crypto pair far more often than a new stock named
    BTCUSD: the user says which with `--asset-class` (or `X:` for crypto).
    """
    for raw, sym in zip(raws, symbols, strict=True):
        if raw.upper().startswith(CRYPTO_PREFIX):
            continue
        others = [s for s in find_symbols(conn, sym.symbol) if s.asset_class != sym.asset_class]
        if others:
            other = others[0].asset_class
            raise InputError(
                f"{sym.symbol} is already tracked as {other}: to track a {sym.asset_class} "
                f"{sym.symbol} as well, say --asset-class {sym.asset_class}"
            )


def resolve_removal(conn: psycopg.Connection, raw: str, parsed: Symbol) -> list[Symbol]:
    """The tracked symbol a plain `symbols remove TEXT` means; ambiguity is refused."""
    found = find_symbols(conn, raw)
    if len(found) > 1:
        classes = " and as ".join(sorted(s.asset_class.value for s in found))
        raise InputError(f"{parsed.symbol} is tracked as {classes}: say which with --asset-class")
    return found or [parsed]
