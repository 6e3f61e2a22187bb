"""The project's own exception types.

Every error a user can cause or fix (bad input, bad configuration, a refused API key) is a
`MarketdataError`, so the command line can print its message without a stack trace and exit
with a status that scripts can rely on.
"""

from __future__ import annotations


class MarketdataError(Exception):
    """Base class for errors whose message is meant for the user."""

    exit_code = 1


class InputError(MarketdataError, ValueError):
    """An external input (symbol, date, URL, setting) does not satisfy its rule."""

    exit_code = 2


class ConfigError(MarketdataError):
    """The environment or configuration cannot work (missing key, bad database URL...)."""

    exit_code = 3
