"""The candle schema, validation before persistence, and quality measures."""
