"""Stored daily returns, maintained by the stock candle runs."""
