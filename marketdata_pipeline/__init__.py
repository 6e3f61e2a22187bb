"""marketdata_pipeline: daily OHLCV candles for stocks and crypto, from Polygon.io into Postgres."""

__version__ = "0.1.0"
