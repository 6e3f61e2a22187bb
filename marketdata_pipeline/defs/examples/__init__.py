"""A documented example of a downstream asset: how users build their own features on the candles."""
