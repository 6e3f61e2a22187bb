"""Corporate actions: stock splits and dividends, and keeping adjusted history current."""
