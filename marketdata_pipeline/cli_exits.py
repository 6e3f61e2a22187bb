"""The exit codes of `marketdata` that are not an error class's own, and its one-line error.

Errors carry their exit code (`lib/errors.py`: 2 invalid input, 3 configuration); these are the
codes of a run that failed and of a command stopped by Ctrl-C.
"""

from __future__ import annotations

import click

EXIT_RUN_FAILED = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


def print_err(message: str) -> None:
    """Print a user mistake or a refusal as one line on stderr, no traceback."""
    click.echo(f"marketdata: error: {message}", err=True)
