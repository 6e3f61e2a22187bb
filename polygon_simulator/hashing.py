"""Stable hashing of the simulator: per-ticker seeds and per-(ticker, day) uniform draws.

Python's hash() is salted per process, so every seed comes from hashlib and every per-day draw
from splitmix64 on numpy uint64 (which wraps on overflow, exactly what the mixer needs).
"""

from __future__ import annotations

import hashlib

import numpy as np

_U64 = np.uint64
_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


def mix_int(x: int) -> int:
    """splitmix64 finaliser on a Python int (scalar twin of `_mix`)."""
    x = (x + _GOLDEN) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, elementwise on a uint64 array."""
    x = x + _U64(_GOLDEN)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def uniform(seeds: np.ndarray, days: np.ndarray, stream: int) -> np.ndarray:
    """Uniform [0, 1) draws, one per (seed, day), independent across `stream` numbers."""
    key = days.astype(np.int64).view(np.uint64) * _U64(0xD1B54A32D192ED03)
    key = key + _U64((stream * _GOLDEN) & _MASK64)
    bits = _mix(seeds ^ _mix(key))
    return (bits >> _U64(11)).astype(np.float64) * (1.0 / (1 << 53))


def ticker_seed(ticker: str) -> int:
    """A stable 64-bit seed for `ticker` (blake2b; identical in every process and version)."""
    return int.from_bytes(hashlib.blake2b(ticker.encode(), digest_size=8).digest(), "little")


def unit(seed: int, stream: int) -> float:
    """A stable uniform [0, 1) draw for a per-ticker parameter."""
    return (mix_int(seed ^ mix_int(stream)) >> 11) / float(1 << 53)
