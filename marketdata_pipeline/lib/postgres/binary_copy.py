"""Postgres binary COPY of a polars frame, encoded column-wise in numpy.

Postgres parses `COPY ... (FORMAT binary)` much faster than CSV: there is no text of floats and
timestamps to parse (about 1.7x less server time for the candle table, docs/benchmarks.md).
Encoding the binary tuple format row by row in Python would cost more than that saves, so the
rows are grouped by their *layout* (the byte length of each text field and which fields are
null); within a group every tuple has the same width, so it is one numpy structured array whose
fields are filled column by column. Row order within the COPY does not matter to a table.

Only the types of the candle and corporate-action tables are encoded (text, date, timestamptz,
double precision, bigint, integer, boolean), each only into a column of exactly that type;
`encodable` says whether a frame qualifies for its target table, and the caller falls back to
CSV otherwise.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import polars as pl

#: The binary COPY header: signature, flags, header-extension length.
HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
#: The file trailer: a tuple field count of -1.
TRAILER = struct.pack(">h", -1)

_PG_EPOCH_DAYS = (dt.date(2000, 1, 1) - dt.date(1970, 1, 1)).days
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400 * 1_000_000

# polars dtype class -> (numpy big-endian dtype, conversion of the polars column to numbers).
_FIXED: dict[type[pl.DataType], str] = {
    pl.Float64: ">f8",
    pl.Int64: ">i8",
    pl.Int32: ">i4",
    pl.Boolean: "u1",
    pl.Date: ">i4",
    pl.Datetime: ">i8",
}


# The Postgres column type (as `format_type` names it) each encoded polars type must meet: a
# binary field is read at the column's own width, so an Int64 into an `integer` column (or a
# Float64 into `real`) is refused by the server ("incorrect binary data format").
_PG_TYPES: dict[type[pl.DataType], frozenset[str]] = {
    pl.String: frozenset({"text", "character varying"}),
    pl.Float64: frozenset({"double precision"}),
    pl.Int64: frozenset({"bigint"}),
    pl.Int32: frozenset({"integer"}),
    pl.Boolean: frozenset({"boolean"}),
    pl.Date: frozenset({"date"}),
    pl.Datetime: frozenset({"timestamp with time zone"}),
}


def encodable(frame: pl.DataFrame, column_types: Mapping[str, str]) -> bool:
    """Whether every column of `frame` has a type this module encodes, matching the type of
    the target column of the same name in `column_types` (name -> `format_type` text)."""
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
            return False  # timestamptz only: a naive value has no instant
        accepted = _PG_TYPES.get(type(dtype))
        if accepted is None or column_types.get(name) not in accepted:
            return False
    return True


def _numbers(column: pl.Series) -> np.ndarray:
    """`column` as the numbers Postgres stores (dates and instants from 2000-01-01)."""
    dtype = column.dtype
    if dtype == pl.Date:
        return column.cast(pl.Int32).to_numpy() - np.int32(_PG_EPOCH_DAYS)
    if isinstance(dtype, pl.Datetime):
        return column.dt.epoch("us").to_numpy() - np.int64(_PG_EPOCH_US)
    if dtype == pl.Boolean:
        return column.cast(pl.UInt8).to_numpy()
    return column.to_numpy()


def encode(frame: pl.DataFrame) -> bytes:
    """The tuples of `frame` (no header or trailer) in Postgres' binary COPY format."""
    if frame.height == 0:
        return b""
    columns = frame.columns
    texts = [c for c in columns if frame.schema[c] == pl.String]
    with_nulls = [c for c in columns if frame.get_column(c).null_count()]
    keys = [pl.col(c).str.len_bytes().fill_null(0).alias(f"__len_{c}") for c in texts]
    keys += [pl.col(c).is_null().alias(f"__null_{c}") for c in with_nulls]
    if not keys:
        return _encode_group(frame, columns, {}, set())
    keyed = frame.with_columns(keys)
    key_names = [k.meta.output_name() for k in keys]
    parts: list[bytes] = []
    for key, group in keyed.group_by(key_names, maintain_order=True):
        values = dict(zip(key_names, key, strict=True))
        lengths = {c: int(values[f"__len_{c}"]) for c in texts}
        nulls = {c for c in with_nulls if values[f"__null_{c}"]}
        parts.append(_encode_group(group.select(columns), columns, lengths, nulls))
    return b"".join(parts)


def _encode_group(
    group: pl.DataFrame, columns: Sequence[str], lengths: dict[str, int], nulls: set[str]
) -> bytes:
    """Tuples of one layout: a structured array with a length and a value field per column."""
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for i, name in enumerate(columns):
        fields.append((f"l{i}", ">i4"))
        if name in nulls:
            continue
        dtype = group.schema[name]
        if dtype == pl.String:
            fields.append((f"v{i}", f"S{lengths[name]}") if lengths[name] else (f"v{i}", "V0"))
        else:
            fields.append((f"v{i}", _FIXED[type(dtype)]))
    out = np.empty(group.height, dtype=np.dtype(fields))
    out["count"] = len(columns)
    for i, name in enumerate(columns):
        if name in nulls:
            out[f"l{i}"] = -1
            continue
        column = group.get_column(name)
        if column.dtype == pl.String:
            width = lengths[name]
            out[f"l{i}"] = width
            if width:
                out[f"v{i}"] = _text(column, width)
        else:
            out[f"l{i}"] = np.dtype(_FIXED[type(column.dtype)]).itemsize
            out[f"v{i}"] = _numbers(column)
    return out.tobytes()


def _text(column: pl.Series, width: int) -> np.ndarray | bytes:
    """UTF-8 bytes of a text column whose values are all `width` bytes long."""
    if column.n_unique() == 1:
        return str(column[0]).encode()  # e.g. the run's `source`: one value for every row
    # The column's UTF-8 bytes end to end, cut into equal widths: no Python object per value.
    joined = column.str.join("").item().encode()
    return np.frombuffer(joined, dtype=f"S{width}")


def binary_chunks(frame: pl.DataFrame, chunk_rows: int) -> Iterator[bytes]:
    """The whole binary COPY stream of `frame` (header, tuples, trailer) in chunks."""
    yield HEADER
    for offset in range(0, frame.height, chunk_rows):
        yield encode(frame.slice(offset, chunk_rows))
    yield TRAILER
