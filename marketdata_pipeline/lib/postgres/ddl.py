"""The `marketdata` schema: tables, constraints and the migrations that create them.

Migrations are numbered and applied once, in order, under a transaction-scoped advisory lock, so
several processes starting together (code server, daemon, CLI) cannot race each other.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from marketdata_pipeline.lib.asset_names import CANDLE_ASSET_NAMES
from marketdata_pipeline.lib.candles.columns import CANDLE_COLUMN_SPECS

SCHEMA = "marketdata"
CANDLE_TABLES = CANDLE_ASSET_NAMES
# Any constant works as long as every process uses the same one.
_MIGRATION_LOCK_ID = 7_461_022_301

_MIGRATIONS: list[tuple[int, str]] = [
    (
        # The candle tables and the quarantine, first: later migrations define views over them.
        # Numbered 0 because stores created before it had these tables made outside the
        # migrations; on those it finds everything in place and changes nothing.
        0,
        """
        CREATE TABLE IF NOT EXISTS marketdata.stock_daily_candles (
            symbol       text             NOT NULL,
            day          date             NOT NULL,
            ts           timestamptz      NOT NULL,
            open         double precision NOT NULL,
            high         double precision NOT NULL,
            low          double precision NOT NULL,
            close        double precision NOT NULL,
            volume       double precision NOT NULL,
            vwap         double precision,
            transactions bigint,
            adjusted     boolean          NOT NULL,
            provisional  boolean          NOT NULL DEFAULT false,
            source       text             NOT NULL,
            fetched_at   timestamptz      NOT NULL,
            vendor_t     bigint,
            PRIMARY KEY (symbol, day)
        );
        -- Both markets land in the same shape (the column registry, lib/candles/columns.py).
        CREATE TABLE IF NOT EXISTS marketdata.crypto_daily_candles
            (LIKE marketdata.stock_daily_candles INCLUDING ALL);
        CREATE TABLE IF NOT EXISTS marketdata.rejected_candles (
            asset        text             NOT NULL,
            symbol       text,
            day          date,
            ts           timestamptz,
            open         double precision,
            high         double precision,
            low          double precision,
            close        double precision,
            volume       double precision,
            vwap         double precision,
            transactions bigint,
            adjusted     boolean,
            provisional  boolean,
            source       text,
            fetched_at   timestamptz,
            vendor_t     bigint,
            reason       text             NOT NULL,
            rejected_at  timestamptz      NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS rejected_candles_slice
            ON marketdata.rejected_candles (asset, symbol, day);
        """,
    ),
    (
        1,
        """
        CREATE SEQUENCE IF NOT EXISTS marketdata.tracked_symbols_change_seq;

        CREATE TABLE IF NOT EXISTS marketdata.tracked_symbols (
            symbol           text        NOT NULL
                CHECK (symbol ~ '^[A-Z0-9][A-Z0-9.]{0,19}$'),
            asset_class      text        NOT NULL CHECK (asset_class IN ('stock', 'crypto')),
            active           boolean     NOT NULL DEFAULT true,
            added_at         timestamptz NOT NULL DEFAULT now(),
            updated_at       timestamptz NOT NULL DEFAULT now(),
            status           text        NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'ok', 'error')),
            last_success_day date,
            last_attempt_at  timestamptz,
            last_error       text,
            change_seq       bigint      NOT NULL
                DEFAULT nextval('marketdata.tracked_symbols_change_seq'),
            PRIMARY KEY (asset_class, symbol)
        );
        COMMENT ON COLUMN marketdata.tracked_symbols.change_seq IS
            'Bumped when a symbol is added or re-activated; the symbol sensor''s cursor.';

        -- Rows added or re-activated by plain SQL must wake the sensor too, so the bump lives
        -- in the database rather than in the command line.
        CREATE OR REPLACE FUNCTION marketdata.tracked_symbols_touch() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                NEW.change_seq := nextval('marketdata.tracked_symbols_change_seq');
            ELSIF NEW.active AND NOT OLD.active THEN
                NEW.change_seq := nextval('marketdata.tracked_symbols_change_seq');
            END IF;
            IF TG_OP = 'UPDATE' AND (NEW.active IS DISTINCT FROM OLD.active) THEN
                NEW.updated_at := now();
            END IF;
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql;

        DROP TRIGGER IF EXISTS tracked_symbols_touch ON marketdata.tracked_symbols;
        CREATE TRIGGER tracked_symbols_touch BEFORE INSERT OR UPDATE
            ON marketdata.tracked_symbols
            FOR EACH ROW EXECUTE FUNCTION marketdata.tracked_symbols_touch();
        """,
    ),
    (
        2,
        # Vendor reality: stock tickers are case-sensitive (`KIMpL`), and the vendor's own bar
        # timestamp is kept as provenance. Stored rows stay valid: they are all upper case.
        """
        -- The canonical form, as `lib/symbols.parse_symbol` gives it: an upper-case letter or
        -- a digit first, then letters (a stock's share class may be lower case, `KIMpL`),
        -- digits and dots; crypto entirely upper case. Plain SQL must insert that form:
        -- `aapl` is refused here rather than silently becoming another ticker.
        ALTER TABLE marketdata.tracked_symbols
            DROP CONSTRAINT IF EXISTS tracked_symbols_symbol_check;
        ALTER TABLE marketdata.tracked_symbols ADD CONSTRAINT tracked_symbols_symbol_check
            CHECK (symbol ~ '^[A-Z0-9][A-Za-z0-9.]{0,19}$'
                   AND (asset_class <> 'crypto' OR symbol = upper(symbol)));

        ALTER TABLE IF EXISTS marketdata.stock_daily_candles
            ADD COLUMN IF NOT EXISTS vendor_t bigint;
        ALTER TABLE IF EXISTS marketdata.crypto_daily_candles
            ADD COLUMN IF NOT EXISTS vendor_t bigint;
        """,
    ),
    (
        3,
        """
        -- Corporate actions. A split's `learned_at` is when this ratio first reached the store;
        -- together with the execution date it says which stored bars already reflect it.
        CREATE TABLE IF NOT EXISTS marketdata.stock_splits (
            symbol                       text             NOT NULL,
            execution_date               date             NOT NULL,
            split_from                   double precision NOT NULL
                CHECK (split_from > 0 AND split_from < 'Infinity'),
            split_to                     double precision NOT NULL
                CHECK (split_to > 0 AND split_to < 'Infinity'),
            adjustment_type              text,
            vendor_id                    text,
            historical_adjustment_factor double precision,
            source                       text             NOT NULL,
            fetched_at                   timestamptz      NOT NULL,
            learned_at                   timestamptz      NOT NULL DEFAULT now(),
            applied_at                   timestamptz,
            PRIMARY KEY (symbol, execution_date)
        );
        COMMENT ON TABLE marketdata.stock_splits IS
            'Stock splits: split_to new shares for every split_from old ones, effective from '
            'execution_date (bars dated before it traded on the old share basis).';
        COMMENT ON COLUMN marketdata.stock_splits.learned_at IS
            'When this split (with this ratio) first reached the store. A stored adjusted bar '
            'reflects it when the bar was fetched after both learned_at and the execution date.';
        COMMENT ON COLUMN marketdata.stock_splits.applied_at IS
            'When the stored history of the tracked symbols was brought in line with this '
            'split (NULL: not yet).';
        COMMENT ON COLUMN marketdata.stock_splits.historical_adjustment_factor IS
            'The vendor''s cumulative factor at fetch time: a cross-check only, it changes '
            'whenever a later split executes.';

        CREATE TABLE IF NOT EXISTS marketdata.stock_dividends (
            symbol                       text             NOT NULL,
            ex_dividend_date             date             NOT NULL,
            dividend_id                  text             NOT NULL,
            cash_amount                  double precision NOT NULL
                CHECK (cash_amount >= 0 AND cash_amount < 'Infinity'),
            currency                     text,
            distribution_type            text,
            frequency                    integer,
            declaration_date             date,
            record_date                  date,
            pay_date                     date,
            split_adjusted_cash_amount   double precision,
            historical_adjustment_factor double precision,
            source                       text             NOT NULL,
            fetched_at                   timestamptz      NOT NULL,
            PRIMARY KEY (symbol, ex_dividend_date, dividend_id)
        );
        COMMENT ON TABLE marketdata.stock_dividends IS
            'Cash dividends per share as paid (never split-adjusted); dividend_id is the '
            'vendor''s id (or derived from the record when the vendor gives none).';

        -- Symbols whose dividend history since start_date has been loaded (daily refreshes
        -- then only re-read recent ex-dates of the whole market).
        CREATE TABLE IF NOT EXISTS marketdata.stock_dividend_history (
            symbol     text        PRIMARY KEY,
            start_date date        NOT NULL,
            loaded_at  timestamptz NOT NULL DEFAULT now()
        );

        -- The instant from which the vendor's adjusted bars include a split: the start of its
        -- execution date in New York, but never before we knew of it.
        CREATE OR REPLACE FUNCTION marketdata.split_effective_at(
            execution_date date, learned_at timestamptz
        ) RETURNS timestamptz LANGUAGE sql STABLE AS $$
            SELECT greatest(learned_at, execution_date::timestamp AT TIME ZONE 'America/New_York')
        $$;

        CREATE OR REPLACE AGGREGATE marketdata.product(double precision) (
            SFUNC = float8mul, STYPE = double precision, INITCOND = '1'
        );

        -- As traded: each adjusted bar times split_to/split_from of every later split it
        -- reflects (volume divided by it). Bars stored unadjusted pass through unchanged.
        CREATE OR REPLACE VIEW marketdata.stock_daily_candles_unadjusted AS
        WITH factors AS (
            -- Only bars with a later split they reflect; a hash join on symbol, then one
            -- product per bar (several times faster on whole-table scans than a per-row
            -- subquery).
            SELECT c.symbol, c.day, marketdata.product(s.split_to / s.split_from) AS factor
            FROM marketdata.stock_daily_candles c
            JOIN marketdata.stock_splits s
              ON s.symbol = c.symbol AND s.execution_date > c.day
            WHERE c.adjusted
              AND c.fetched_at >= marketdata.split_effective_at(s.execution_date, s.learned_at)
            GROUP BY c.symbol, c.day
        )
        SELECT c.symbol, c.day, c.ts,
               c.open * coalesce(f.factor, 1) AS open,
               c.high * coalesce(f.factor, 1) AS high,
               c.low * coalesce(f.factor, 1) AS low,
               c.close * coalesce(f.factor, 1) AS close,
               c.volume / coalesce(f.factor, 1) AS volume,
               c.vwap * coalesce(f.factor, 1) AS vwap,
               c.transactions,
               false AS adjusted,
               c.provisional, c.source, c.fetched_at
        FROM marketdata.stock_daily_candles c
        LEFT JOIN factors f ON f.symbol = c.symbol AND f.day = c.day;
        COMMENT ON VIEW marketdata.stock_daily_candles_unadjusted IS
            'Stock candles as traded on each day (no split adjustment), derived from '
            'stock_daily_candles and stock_splits.';

        -- Daily returns on the split-adjusted series. The total return adds the day's cash
        -- dividends back on the ex-date, restated on the same share basis as the close.
        CREATE OR REPLACE VIEW marketdata.stock_daily_returns AS
        WITH dividends AS (
            SELECT symbol, ex_dividend_date AS day, sum(cash_amount) AS cash_amount
            FROM marketdata.stock_dividends
            GROUP BY symbol, ex_dividend_date
        ), series AS (
            SELECT c.symbol, c.day, c.close, c.adjusted, c.fetched_at,
                   lag(c.day) OVER w AS prev_day,
                   lag(c.close) OVER w AS prev_close,
                   d.cash_amount
            FROM marketdata.stock_daily_candles c
            LEFT JOIN dividends d ON d.symbol = c.symbol AND d.day = c.day
            WINDOW w AS (PARTITION BY c.symbol ORDER BY c.day)
        )
        SELECT s.symbol, s.day, s.prev_day, s.prev_close, s.close,
               coalesce(s.cash_amount, 0) AS dividend,
               coalesce(s.cash_amount * f.factor, 0) AS dividend_adjusted,
               s.close / s.prev_close - 1 AS simple_return,
               (s.close + coalesce(s.cash_amount * f.factor, 0)) / s.prev_close - 1
                   AS total_return
        FROM series s
        CROSS JOIN LATERAL (
            SELECT marketdata.product(sp.split_from / sp.split_to) AS factor
            FROM marketdata.stock_splits sp
            WHERE s.cash_amount IS NOT NULL
              AND s.adjusted
              AND sp.symbol = s.symbol
              AND sp.execution_date > s.day
              AND s.fetched_at >= marketdata.split_effective_at(sp.execution_date, sp.learned_at)
        ) f
        WHERE s.prev_close IS NOT NULL;
        COMMENT ON VIEW marketdata.stock_daily_returns IS
            'Per (symbol, day): simple return close/prev_close - 1 on the split-adjusted series, '
            'and total return with the ex-date cash dividends added back (split-neutral).';
        """,
    ),
    (
        4,
        """
        -- What kind of data the store holds ('polygon' or 'simulator'), claimed by the first
        -- write: a store never mixes simulated and real rows.
        CREATE TABLE IF NOT EXISTS marketdata.store_info (
            key    text        PRIMARY KEY,
            value  text        NOT NULL,
            set_at timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
    (
        6,
        # Security identity (a ticker is not a company: renames, reused tickers, delistings),
        # tracking rules, and when each kind of reference data was last refreshed.
        """
        CREATE TABLE IF NOT EXISTS marketdata.securities (
            security_id      text        PRIMARY KEY
                CHECK (security_id ~ '^(BBG[0-9A-Z]{9}|md:[0-9a-f]{16})$'),
            name             text,
            type             text,
            market           text        NOT NULL DEFAULT 'stocks',
            primary_exchange text,
            cik              text,
            composite_figi   text        UNIQUE,
            share_class_figi text,
            list_date        date,
            delisted_date    date,
            active           boolean     NOT NULL DEFAULT true,
            source           text        NOT NULL,
            updated_at       timestamptz NOT NULL DEFAULT now(),
            CHECK (composite_figi IS NULL OR security_id = composite_figi)
        );
        COMMENT ON TABLE marketdata.securities IS
            'One row per security (a company share class), whatever tickers it traded under. '
            'security_id is the composite FIGI where the vendor has one, else a derived md: '
            'id fixed when the security is first seen.';

        CREATE TABLE IF NOT EXISTS marketdata.ticker_history (
            security_id text        NOT NULL
                REFERENCES marketdata.securities (security_id) ON DELETE CASCADE,
            ticker      text        NOT NULL CHECK (ticker ~ '^[A-Z0-9][A-Za-z0-9.]{0,19}$'),
            first_day   date        NOT NULL,
            last_day    date        CHECK (last_day IS NULL OR last_day >= first_day),
            source      text        NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (security_id, ticker, first_day)
        );
        CREATE INDEX IF NOT EXISTS ticker_history_by_ticker
            ON marketdata.ticker_history (ticker, first_day);
        COMMENT ON TABLE marketdata.ticker_history IS
            'The days each security traded under each ticker (both inclusive; last_day NULL '
            'while current). Never two securities on one ticker on one day.';

        -- One owner per ticker per day. An exclusion constraint would need btree_gist, which
        -- not every Postgres (the embedded one included) ships; a trigger under a per-ticker
        -- lock gives the same guarantee and names both securities.
        CREATE OR REPLACE FUNCTION marketdata.ticker_history_one_owner() RETURNS trigger AS $$
        DECLARE
            other record;
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext('marketdata.ticker_history:' || NEW.ticker));
            SELECT h.security_id, h.first_day, h.last_day INTO other
            FROM marketdata.ticker_history h
            WHERE h.ticker = NEW.ticker
              AND NOT (TG_OP = 'UPDATE' AND h.security_id = OLD.security_id
                       AND h.ticker = OLD.ticker AND h.first_day = OLD.first_day)
              AND daterange(h.first_day, h.last_day, '[]')
                  && daterange(NEW.first_day, NEW.last_day, '[]')
            LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'exclusion_violation',
                    MESSAGE = format(
                        'ambiguous ownership of ticker %s: %s holds it from %s to %s, so %s '
                        'cannot hold it from %s to %s',
                        NEW.ticker, other.security_id, other.first_day,
                        coalesce(other.last_day::text, 'now'), NEW.security_id,
                        NEW.first_day, coalesce(NEW.last_day::text, 'now'));
            END IF;
            NEW.updated_at := now();
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql;

        DROP TRIGGER IF EXISTS ticker_history_one_owner ON marketdata.ticker_history;
        CREATE TRIGGER ticker_history_one_owner BEFORE INSERT OR UPDATE
            ON marketdata.ticker_history
            FOR EACH ROW EXECUTE FUNCTION marketdata.ticker_history_one_owner();

        -- The security a ticker meant on a day (NULL when nobody held it).
        CREATE OR REPLACE FUNCTION marketdata.security_at(ticker text, day date)
        RETURNS text LANGUAGE sql STABLE AS $$
            SELECT h.security_id FROM marketdata.ticker_history h
            WHERE h.ticker = security_at.ticker
              AND h.first_day <= security_at.day
              AND (h.last_day IS NULL OR h.last_day >= security_at.day)
        $$;

        -- One security's bars across its tickers, and only the days it held each one.
        CREATE OR REPLACE VIEW marketdata.security_daily_candles AS
        SELECT h.security_id, c.day, c.symbol AS ticker, c.ts,
               c.open, c.high, c.low, c.close, c.volume, c.vwap, c.transactions,
               c.adjusted, c.provisional, c.source, c.fetched_at
        FROM marketdata.ticker_history h
        JOIN marketdata.stock_daily_candles c
          ON c.symbol = h.ticker
         AND c.day >= h.first_day
         AND (h.last_day IS NULL OR c.day <= h.last_day);
        COMMENT ON VIEW marketdata.security_daily_candles IS
            'Stock candles by security: a company''s whole series across renames, and under a '
            'reused ticker only its own days (ticker is the ticker as traded that day).';

        -- The universe as rules: every ticker the vendor lists of these types.
        CREATE TABLE IF NOT EXISTS marketdata.tracking_rules (
            rule_id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            market           text        NOT NULL CHECK (market IN ('stocks')),
            types            text[]      NOT NULL DEFAULT '{}',
            include_delisted boolean     NOT NULL DEFAULT false,
            active           boolean     NOT NULL DEFAULT true,
            added_at         timestamptz NOT NULL DEFAULT now(),
            updated_at       timestamptz NOT NULL DEFAULT now(),
            UNIQUE (market, types, include_delisted)
        );
        COMMENT ON COLUMN marketdata.tracking_rules.types IS
            'Vendor ticker types (CS, ETF, ...), sorted; empty: every type of the market.';

        -- When each kind of reference data was last loaded, so it is loaded at most once a
        -- day per store (scope: what was loaded, e.g. a market or a security id).
        CREATE TABLE IF NOT EXISTS marketdata.reference_refreshes (
            kind         text        NOT NULL,
            scope        text        NOT NULL,
            refreshed_on date        NOT NULL,
            refreshed_at timestamptz NOT NULL DEFAULT now(),
            requests     integer     NOT NULL DEFAULT 0,
            PRIMARY KEY (kind, scope)
        );
        """,
    ),
    (
        9,
        """
        -- When each kind of reference data was last read, and over what: a run reads a kind
        -- again only when today's read is missing or did not cover what it needs, so a second
        -- run on the same day pays only for its candles.
        CREATE TABLE IF NOT EXISTS marketdata.reference_refresh (
            kind         text        NOT NULL,
            scope        text        NOT NULL,
            refreshed_on date        NOT NULL,
            refreshed_at timestamptz NOT NULL DEFAULT now(),
            covers_from  date        NOT NULL,
            covers_to    date        NOT NULL CHECK (covers_to >= covers_from),
            requests     integer     NOT NULL CHECK (requests >= 0),
            records      integer     NOT NULL CHECK (records >= 0),
            PRIMARY KEY (kind, scope)
        );
        COMMENT ON TABLE marketdata.reference_refresh IS
            'The last read of each reference kind (splits, dividends, ...) per scope (market: '
            'the whole market): the New York day, the event dates it covered, what it cost.';
        """,
    ),
    (
        5,
        # One day across the market (a cross-section) read from an index on day instead of a
        # scan of the whole table: the primary key (symbol, day) only serves one symbol.
        """
        CREATE INDEX IF NOT EXISTS stock_daily_candles_day ON marketdata.stock_daily_candles (day);
        CREATE INDEX IF NOT EXISTS crypto_daily_candles_day
            ON marketdata.crypto_daily_candles (day);
        """,
    ),
    (
        7,
        # The view `stock_daily_returns` windows the whole candle table for every question (12.7 s
        # for one day at 13 M bars); this table keeps its rows, maintained by the
        # `stock_daily_returns_stored` asset (lib/postgres/returns.py), and is filled from the
        # view here once so an existing store starts complete.
        """
        CREATE TABLE IF NOT EXISTS marketdata.stock_daily_returns_stored (
            symbol            text             NOT NULL,
            day               date             NOT NULL,
            prev_day          date             NOT NULL,
            prev_close        double precision NOT NULL,
            close             double precision NOT NULL,
            dividend          double precision NOT NULL,
            dividend_adjusted double precision NOT NULL,
            simple_return     double precision NOT NULL,
            total_return      double precision NOT NULL,
            PRIMARY KEY (symbol, day)
        );
        CREATE INDEX IF NOT EXISTS stock_daily_returns_stored_day
            ON marketdata.stock_daily_returns_stored (day);
        COMMENT ON TABLE marketdata.stock_daily_returns_stored IS
            'The rows of the view stock_daily_returns, stored: simple and dividend-inclusive '
            'total daily returns per (symbol, day), rewritten by each stock candle run where '
            'candles, splits or dividends changed.';

        -- The newest split or dividend change the table has taken in.
        CREATE TABLE IF NOT EXISTS marketdata.stock_daily_returns_state (
            singleton      boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
            events_through timestamptz NOT NULL
        );

        INSERT INTO marketdata.stock_daily_returns_stored
        SELECT symbol, day, prev_day, prev_close, close, dividend, dividend_adjusted,
               simple_return, total_return
        FROM marketdata.stock_daily_returns
        ON CONFLICT DO NOTHING;
        INSERT INTO marketdata.stock_daily_returns_state (events_through)
        SELECT t FROM (
            SELECT greatest(
                (SELECT max(greatest(learned_at, applied_at)) FROM marketdata.stock_splits),
                (SELECT max(fetched_at) FROM marketdata.stock_dividends)) AS t
        ) newest
        WHERE t IS NOT NULL
        ON CONFLICT DO NOTHING;
        """,
    ),
    (
        15,
        # One record of reference reads: the ticker loads' rows (migration 6's
        # reference_refreshes) join the splits and dividends reads in reference_refresh, with
        # what an incremental read needs to resume (the newest vendor change it has taken in,
        # and where a rolling reconciliation pass stopped).
        """
        ALTER TABLE marketdata.reference_refresh
            ADD COLUMN IF NOT EXISTS watermark timestamptz,
            ADD COLUMN IF NOT EXISTS resume_after text;
        COMMENT ON COLUMN marketdata.reference_refresh.watermark IS
            'Incremental reads: the newest vendor change taken in (e.g. the largest '
            'last_updated_utc of the ticker list); the next read stops at records older.';
        COMMENT ON COLUMN marketdata.reference_refresh.resume_after IS
            'Rolling reads: where the last pass stopped (e.g. a ticker); the next one starts '
            'after it, NULL: from the beginning.';
        COMMENT ON TABLE marketdata.reference_refresh IS
            'The last read of each reference kind (splits, dividends, tickers, ...) per scope '
            '(market: the whole market; stocks: a vendor market): the New York day, the event '
            'dates it covered, what it cost, and where an incremental read resumes.';
        INSERT INTO marketdata.reference_refresh
            (kind, scope, refreshed_on, refreshed_at, covers_from, covers_to, requests, records)
        SELECT kind, scope, refreshed_on, refreshed_at, refreshed_on, refreshed_on,
               greatest(requests, 0), 0
        FROM marketdata.reference_refreshes
        ON CONFLICT (kind, scope) DO NOTHING;
        DROP TABLE marketdata.reference_refreshes;
        """,
    ),
    (
        20,
        # A tracking rule added (or re-activated) wakes the tracked-symbols sensor like a
        # symbol does: its tickers' history is requested (the bump lives in the database, so
        # a rule inserted by plain SQL counts too).
        """
        CREATE SEQUENCE IF NOT EXISTS marketdata.tracking_rules_change_seq;
        ALTER TABLE marketdata.tracking_rules ADD COLUMN IF NOT EXISTS change_seq bigint
            NOT NULL DEFAULT nextval('marketdata.tracking_rules_change_seq');
        COMMENT ON COLUMN marketdata.tracking_rules.change_seq IS
            'Bumped when a rule is added or re-activated; part of the symbol sensor''s cursor.';
        CREATE OR REPLACE FUNCTION marketdata.tracking_rules_touch() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'INSERT' OR (NEW.active AND NOT OLD.active) THEN
                NEW.change_seq := nextval('marketdata.tracking_rules_change_seq');
            END IF;
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql;
        DROP TRIGGER IF EXISTS tracking_rules_touch ON marketdata.tracking_rules;
        CREATE TRIGGER tracking_rules_touch BEFORE INSERT OR UPDATE
            ON marketdata.tracking_rules
            FOR EACH ROW EXECUTE FUNCTION marketdata.tracking_rules_touch();
        """,
    ),
    (
        23,
        # Each candle table's row count, kept by the store's one write (`store.write_batch`)
        # in the write's own transaction: the row count the UI shows after every run was a
        # `count(*)` of the whole table, which grows with the store (docs/benchmarks.md,
        # `bench/daily_update.py`). Any other change to a table (SQL by hand, TRUNCATE) marks
        # its count unknown (NULL) through a statement trigger (once per statement, whatever
        # its rows), and the next read counts again (`store.table_row_count`).
        """
        CREATE TABLE IF NOT EXISTS marketdata.candle_table_rows (
            table_name text   PRIMARY KEY,
            row_count  bigint CHECK (row_count >= 0)
        );
        INSERT INTO marketdata.candle_table_rows (table_name, row_count)
            SELECT 'stock_daily_candles', count(*) FROM marketdata.stock_daily_candles
            UNION ALL
            SELECT 'crypto_daily_candles', count(*) FROM marketdata.crypto_daily_candles
        ON CONFLICT (table_name) DO NOTHING;
        CREATE OR REPLACE FUNCTION marketdata.candle_rows_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            -- The store's write sets this for its own transaction and counts its rows itself.
            IF coalesce(current_setting('marketdata.counted_write', true), '') <> 'on' THEN
                UPDATE marketdata.candle_table_rows SET row_count = NULL
                WHERE table_name = TG_TABLE_NAME;
            END IF;
            RETURN NULL;
        END
        $$;
        CREATE OR REPLACE TRIGGER candle_rows_changed
            AFTER INSERT OR DELETE OR TRUNCATE ON marketdata.stock_daily_candles
            FOR EACH STATEMENT EXECUTE FUNCTION marketdata.candle_rows_changed();
        CREATE OR REPLACE TRIGGER candle_rows_changed
            AFTER INSERT OR DELETE OR TRUNCATE ON marketdata.crypto_daily_candles
            FOR EACH STATEMENT EXECUTE FUNCTION marketdata.candle_rows_changed();
        """,
    ),
]


#: Column types of `marketdata.rejected_candles` beyond the candle columns it mirrors.
_REJECTED_EXTRA_SQL_TYPES = {
    "asset": "text NOT NULL",
    "vendor_t": "bigint",
    "reason": "text NOT NULL",
    "rejected_at": "timestamptz NOT NULL DEFAULT now()",
}


def rejected_sql_types() -> dict[str, str]:
    """Columns of `marketdata.rejected_candles`, derived from the candle schema.

    A quarantined vendor row may be missing anything, so the mirrored candle columns carry
    their types without NOT NULL or defaults.
    """
    mirrored = {c.name: c.bare_sql_type for c in CANDLE_COLUMN_SPECS}
    return {
        "asset": _REJECTED_EXTRA_SQL_TYPES["asset"],
        **mirrored,
        **{k: v for k, v in _REJECTED_EXTRA_SQL_TYPES.items() if k != "asset"},
    }


def migrate(conn: psycopg.Connection) -> list[int]:
    """Apply pending migrations, in list order; return the versions applied.

    The numbered migrations are the one way the schema changes: a column added to the
    registry (`lib/candles/columns.py`) needs one here too, and a test compares the two.

    Runs in its own transaction on `conn` and commits it.
    """
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS marketdata.schema_migrations ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r[0] for r in conn.execute("SELECT version FROM marketdata.schema_migrations")}
        for version, statement in _MIGRATIONS:
            if version in done:
                continue
            conn.execute(statement)
            conn.execute(
                "INSERT INTO marketdata.schema_migrations (version) VALUES (%s)", (version,)
            )
            applied.append(version)
    return applied
