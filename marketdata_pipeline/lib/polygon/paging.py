"""Following `next_url` from page to page, with loop and page-count guards.

The host in a `next_url` is never trusted (it has been seen as `:443:443`): only its path and its
cursor are kept and joined onto our own base URL, as the official client does, and the key stays
in the `Authorization` header (an `apiKey` in the cursor is dropped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from marketdata_pipeline.lib.polygon.errors import PolygonPayloadError


def next_path(next_url: str, what: str, prefix: str = "/v2/aggs/") -> tuple[str, dict[str, str]]:
    """Path and query of a `next_url`; `PolygonPayloadError` when its path is not under
    `prefix` (a cursor may name a sibling path of the endpoint, never another API family)."""
    parts = urlsplit(next_url)
    if not parts.path.startswith(prefix):
        raise PolygonPayloadError(
            f"Polygon response for {what} has an unexpected next_url path {parts.path!r}",
            request=what,
        )
    query = {k: v[-1] for k, v in parse_qs(parts.query).items() if k.lower() != "apikey"}
    return parts.path, query


def follow_pages(
    path: str,
    params: dict[str, str],
    *,
    what: str,
    prefix: str,
    max_pages: int,
    get: Callable[[str, dict[str, str]], Any],
    next_url_of: Callable[[Any], str | None],
) -> Iterator[Any]:
    """Pages from `get(path, params)` on, following `next_url` with loop and count guards."""
    seen: set[str] = set()
    for page_number in range(1, max_pages + 1):
        page = get(path, params)
        yield page
        next_url = next_url_of(page)
        if not next_url:
            return
        path, params = next_path(next_url, what, prefix=prefix)
        cursor_key = f"{path}?{sorted(params.items())}"
        if cursor_key in seen:
            raise PolygonPayloadError(
                f"Polygon pagination for {what} repeats a next_url after page "
                f"{page_number}: stopping instead of looping",
                request=what,
            )
        seen.add(cursor_key)
    raise PolygonPayloadError(
        f"Polygon pagination for {what} exceeds {max_pages} pages: stopping",
        request=what,
    )
