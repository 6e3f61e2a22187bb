"""Switchable faults of the Polygon simulator, described as data.

A test adds `FaultRule`s (in process, or as JSON through `POST /_sim/faults`); each API request
takes the first active rule that matches it, which then fires in place of (or on top of) the
normal answer. Rules are matched in the order they were added. Every rule fires `times` times
(None: until removed) and then stays listed, exhausted, so a test can read `fired`.

What each kind produces (status 200 unless said otherwise):

- `status`: HTTP `status_code` with the real Polygon error body (`body="json"`) or an nginx
  HTML page (`body="html"`, as real 5xx outages return); `retry_after` sets `Retry-After`.
- `delay`: waits `seconds` (asyncio.sleep) and then answers normally (read-timeout tests).
- `truncated_json`: the first half of the valid body.
- `invalid_json`: a non-JSON body: `{"status": "OK", results: [` (`body="json"`) or an HTML
  page (`body="html"`).
- `reset`: sends the response head and part of the body, then drops the connection; clients
  see a protocol error (httpx.RemoteProtocolError), never a response.
- `delayed_status`: the normal body with `"status": "DELAYED"`.
- `results_count_mismatch`: the normal body with `resultsCount` and `count` one too high.
- `next_url_loop`: the normal page plus a `next_url` that points back at the same request
  (same from/to and cursor), so a client that follows it blindly never ends.
- `bad_bars`: the normal page with bars corrupted by `corrupt` (see `CORRUPTIONS`).
"""

from __future__ import annotations

import copy
import math
import re
import threading
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FaultKind = Literal[
    "status",
    "delay",
    "truncated_json",
    "invalid_json",
    "reset",
    "delayed_status",
    "results_count_mismatch",
    "next_url_loop",
    "bad_bars",
]
Corruption = Literal[
    "high_below_low",
    "negative_volume",
    "zero_price",
    "misaligned_t",
    "null_field",
    "string_field",
    "duplicate_day",
    "nan_price",
    "nan_literal",
]

# What each `bad_bars` corruption does to its bar. The k-th name in `corrupt` hits the k-th bar
# of the page (wrapping around on short pages), so several names give several bad rows.
CORRUPTIONS: dict[str, str] = {
    "high_below_low": "swaps h and l, so h < l (a value problem: quarantine)",
    "negative_volume": "v becomes -v (value problem: quarantine)",
    "zero_price": "o and l become 0.0; h >= l still holds (value problem: quarantine)",
    "misaligned_t": "t moves 1 hour later: not 00:00 NY / UTC (structural or quarantine)",
    "null_field": "c becomes null (JSON null: a structural null)",
    "string_field": 'c becomes a string such as "123.45" (structural dtype problem)',
    "duplicate_day": "the bar is sent twice (structural duplicate); resultsCount counts both",
    "nan_price": 'c becomes the string "NaN" (JSON has no NaN; structural dtype problem)',
    "nan_literal": "c becomes a bare NaN token: invalid JSON that Python's json reads as nan",
}

# Plausible default messages, taken from the real API's answers where known.
RATE_LIMIT_MESSAGE = (
    "You've exceeded the maximum requests per minute, please wait or upgrade your subscription "
    "to continue."
)
NOT_AUTHORIZED_MESSAGE = (
    "Your plan doesn't include this data timeframe. Please upgrade your plan at "
    "https://massive.com/pricing"
)
DEFAULT_ERROR_MESSAGES = {
    400: "Could not parse the time parameter: 'from'. Use YYYY-MM-DD or Unix MS Timestamps",
    401: "Unknown API Key",
    403: NOT_AUTHORIZED_MESSAGE,
    404: "Ticker not found.",
    429: RATE_LIMIT_MESSAGE,
}
_REASONS = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    413: "Request Entity Too Large", 429: "Too Many Requests", 499: "Client Closed Request",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}  # fmt: skip


class FaultRule(BaseModel):
    """One switchable fault: which requests it matches, how often it fires, what it does.

    Matching: `match_path` is searched in the request path as a regular expression (a plain
    substring works too; an invalid regex is used as a literal substring); `ticker` must equal
    the range request's ticker exactly and never matches grouped requests; `endpoint` limits it
    to "range" or "grouped". Unset criteria match everything.
    """

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    match_path: str | None = None
    ticker: str | None = None
    endpoint: Literal["range", "grouped"] | None = None
    times: int | None = Field(default=None, ge=0)
    # kind == "status"
    status_code: int = Field(default=500, ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0)
    body: Literal["json", "html"] = "json"
    message: str | None = None
    # kind == "delay"
    seconds: float = Field(default=1.0, ge=0)
    # kind == "bad_bars"
    corrupt: list[Corruption] = Field(default_factory=lambda: ["high_below_low"])

    @field_validator("corrupt")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("corrupt needs at least one corruption name")
        return value

    @model_validator(mode="after")
    def _retry_after_needs_status(self) -> FaultRule:
        if self.retry_after is not None and self.kind != "status":
            raise ValueError("retry_after only applies to kind 'status'")
        return self

    def matches(self, path: str, endpoint: str, ticker: str | None) -> bool:
        """True when this rule's criteria accept a request (ignoring how often it fired)."""
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        if self.ticker is not None and (endpoint != "range" or ticker != self.ticker):
            return False
        if self.match_path is not None and self.match_path not in path:
            try:
                if not re.search(self.match_path, path):
                    return False
            except re.error:
                return False
        return True


class FaultBook:
    """The active fault rules, shared by the event loop and test threads (hence the lock)."""

    def __init__(self) -> None:
        """Start with no rules."""
        self._lock = threading.Lock()
        self._rules: list[tuple[int, FaultRule]] = []
        self._fired: dict[int, int] = {}
        self._next_id = 1

    def add(self, rule: FaultRule | dict[str, Any]) -> int:
        """Validate and append a rule; returns its id."""
        rule = rule if isinstance(rule, FaultRule) else FaultRule.model_validate(rule)
        with self._lock:
            rule_id = self._next_id
            self._next_id += 1
            self._rules.append((rule_id, rule))
            self._fired[rule_id] = 0
            return rule_id

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()
            self._fired.clear()

    def remove(self, rule_id: int) -> bool:
        """Remove one rule by id; False when there was none."""
        with self._lock:
            before = len(self._rules)
            self._rules = [(i, r) for i, r in self._rules if i != rule_id]
            self._fired.pop(rule_id, None)
            return len(self._rules) != before

    def take(self, path: str, endpoint: str, ticker: str | None) -> FaultRule | None:
        """The first matching rule with firings left, counted as fired; None when none applies."""
        with self._lock:
            for rule_id, rule in self._rules:
                fired = self._fired[rule_id]
                if rule.times is not None and fired >= rule.times:
                    continue
                if rule.matches(path, endpoint, ticker):
                    self._fired[rule_id] = fired + 1
                    return rule
        return None

    def describe(self) -> list[dict[str, Any]]:
        """The rules as JSON-ready dicts with `id`, `fired` and `remaining` (None: unlimited)."""
        with self._lock:
            out = []
            for rule_id, rule in self._rules:
                fired = self._fired[rule_id]
                remaining = None if rule.times is None else max(rule.times - fired, 0)
                item = {"id": rule_id, "fired": fired, "remaining": remaining}
                item.update(rule.model_dump(mode="json"))
                out.append(item)
            return out


# --- bodies -------------------------------------------------------------------------------------


def error_payload(status_code: int, request_id: str, message: str | None = None) -> dict:
    """The JSON error body Polygon sends for `status_code`.

    403 uses `{"status": "NOT_AUTHORIZED", "message": ...}` and 404 `NOT_FOUND`/`message`;
    everything else `{"status": "ERROR", "error": ...}`.
    """
    if status_code == 403:
        return {
            "status": "NOT_AUTHORIZED",
            "request_id": request_id,
            "message": message or NOT_AUTHORIZED_MESSAGE,
        }
    if status_code == 404:
        return {"status": "NOT_FOUND", "request_id": request_id, "message": message or "Not found."}
    default = DEFAULT_ERROR_MESSAGES.get(status_code) or reason_phrase(status_code)
    return {"status": "ERROR", "request_id": request_id, "error": message or default}


def reason_phrase(status_code: int) -> str:
    """The reason phrase nginx prints for a status code."""
    return _REASONS.get(status_code, "Error")


def nginx_html(status_code: int) -> str:
    """The HTML page nginx serves for an error status (what real 5xx outages return)."""
    title = f"{status_code} {reason_phrase(status_code)}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )


def invalid_json_body(body: str) -> str:
    """A 200 body that is not JSON: broken JSON text, or an HTML page for `body == "html"`."""
    if body == "html":
        return "<html><body><h1>Service is being upgraded</h1></body></html>"
    return '{"status": "OK", results: ['


def _high_below_low(bar: dict[str, Any]) -> None:
    bar["h"], bar["l"] = bar["l"], bar["h"]
    if bar["h"] == bar["l"]:
        bar["l"] = bar["h"] * 1.01


_BarEdit = Callable[[dict[str, Any]], None]


def _set(**fields: Any) -> _BarEdit:
    return lambda bar: bar.update(fields)


# Each corruption of CORRUPTIONS but `duplicate_day` (which inserts a bar), as an edit in place.
_BAR_EDITS: dict[str, _BarEdit] = {
    "high_below_low": _high_below_low,
    "negative_volume": lambda bar: bar.update(v=-abs(bar["v"]) or -1.0),
    "zero_price": _set(o=0.0, l=0.0),
    "misaligned_t": lambda bar: bar.update(t=bar["t"] + 3_600_000),
    "null_field": _set(c=None),
    "string_field": lambda bar: bar.update(c=str(bar["c"])),
    "nan_price": _set(c="NaN"),
    "nan_literal": _set(c=math.nan),
}


def corrupt_results(results: list[dict[str, Any]], corrupt: list[str]) -> list[dict[str, Any]]:
    """A copy of `results` with the k-th corruption applied to the k-th bar (see CORRUPTIONS).

    Duplicates are inserted right after their original, so they are adjacent like a vendor's
    double-sent row.
    """
    if not results:
        return []
    out = copy.deepcopy(results)
    duplicates: list[int] = []
    for k, name in enumerate(corrupt):
        i = k % len(out)
        if name == "duplicate_day":
            duplicates.append(i)
        elif name in _BAR_EDITS:
            _BAR_EDITS[name](out[i])
        else:  # pragma: no cover - FaultRule validates the names
            raise ValueError(f"unknown corruption {name!r}")
    for i in sorted(set(duplicates), reverse=True):
        out.insert(i + 1, dict(out[i]))
    return out
