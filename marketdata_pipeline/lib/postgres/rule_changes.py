"""Tracking rules added or re-activated since a cursor: what the tracked-symbols sensor turns
into history runs of the rules' tickers (`change_seq`, migration 20)."""

from __future__ import annotations

import psycopg


def rule_changes_since(conn: psycopg.Connection, seq: int) -> tuple[list[int], int]:
    """Active rules (ids) added or re-activated after `seq`, and the newest seq."""
    rows = conn.execute(
        "SELECT rule_id FROM marketdata.tracking_rules"
        " WHERE change_seq > %s AND active ORDER BY change_seq",
        (seq,),
    ).fetchall()
    (newest,) = conn.execute(
        "SELECT coalesce(max(change_seq), 0) FROM marketdata.tracking_rules"
    ).fetchone()
    return [int(r[0]) for r in rows], max(seq, int(newest))
